"""Choosing a BlobStore adapter from configuration."""

from __future__ import annotations

import os
from pathlib import Path

from modelreg.artifacts import BlobStore


def open_blob_store(url: str) -> BlobStore:
    """`file:///abs/path` or `s3://bucket?endpoint=host:port&secure=0&region=r`.

    S3 credentials come from MODELREG_S3_ACCESS_KEY and MODELREG_S3_SECRET_KEY.
    """
    from urllib.parse import parse_qs, urlparse

    parsed = urlparse(url)
    if parsed.scheme == "file":
        from modelreg.artifacts.fs import FilesystemBlobStore

        return FilesystemBlobStore(Path(parsed.path))
    if parsed.scheme == "s3":
        from modelreg.artifacts.s3 import S3BlobStore

        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return S3BlobStore(
            endpoint=query.get("endpoint", "s3.amazonaws.com"),
            bucket=parsed.netloc,
            access_key=os.environ.get("MODELREG_S3_ACCESS_KEY", ""),
            secret_key=os.environ.get("MODELREG_S3_SECRET_KEY", ""),
            region=query.get("region", "us-east-1"),
            secure=query.get("secure", "1") not in ("0", "false"),
        )
    raise ValueError(f"unsupported artifact store URL {url!r}: use file:///path or s3://bucket?endpoint=...")

"""Choosing a SegmentStore adapter from a URL (the forms of MODELREG_ARTIFACTS)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from modelreg.archive import SegmentStore

ARCHIVE_ENV = "MODELREG_ARCHIVE"


def open_segment_store(url: str) -> SegmentStore:
    """`file:///abs/path` or `s3://bucket/prefix?endpoint=host:port&secure=0&region=r`.

    S3 credentials come from MODELREG_S3_ACCESS_KEY and MODELREG_S3_SECRET_KEY.
    """
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from modelreg.archive.fs import FilesystemSegmentStore

        return FilesystemSegmentStore(Path(parsed.path))
    if parsed.scheme == "s3":
        from modelreg.archive.s3 import S3SegmentStore

        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return S3SegmentStore(
            endpoint=query.get("endpoint", "s3.amazonaws.com"),
            bucket=parsed.netloc,
            prefix=parsed.path,
            access_key=os.environ.get("MODELREG_S3_ACCESS_KEY", ""),
            secret_key=os.environ.get("MODELREG_S3_SECRET_KEY", ""),
            region=query.get("region", "us-east-1"),
            secure=query.get("secure", "1") not in ("0", "false"),
        )
    raise ValueError(f"unsupported archive URL {url!r}: use file:///path or s3://bucket?endpoint=...")

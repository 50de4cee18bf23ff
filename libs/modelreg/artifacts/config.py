"""Choosing a BlobStore adapter from configuration, and the store URL forms it shares
with the log archive (MODELREG_ARTIFACTS, MODELREG_ARCHIVE)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from modelreg.artifacts import BlobStore


@dataclass(frozen=True, slots=True)
class S3Location:
    """An `s3://bucket/prefix?endpoint=host:port&secure=0&region=r` URL, with the
    credentials from MODELREG_S3_ACCESS_KEY and MODELREG_S3_SECRET_KEY."""

    endpoint: str
    bucket: str
    prefix: str
    access_key: str
    secret_key: str
    region: str
    secure: bool


def parse_store_url(url: str, what: str) -> Path | S3Location:
    """`file:///abs/path` as a Path, `s3://...` as an S3Location; `what` names the
    store in the error for any other form."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "s3":
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return S3Location(
            endpoint=query.get("endpoint", "s3.amazonaws.com"),
            bucket=parsed.netloc,
            prefix=parsed.path,
            access_key=os.environ.get("MODELREG_S3_ACCESS_KEY", ""),
            secret_key=os.environ.get("MODELREG_S3_SECRET_KEY", ""),
            region=query.get("region", "us-east-1"),
            secure=query.get("secure", "1") not in ("0", "false"),
        )
    raise ValueError(f"unsupported {what} URL {url!r}: use file:///path or s3://bucket?endpoint=...")


def open_blob_store(url: str) -> BlobStore:
    """`file:///abs/path` or `s3://bucket?endpoint=host:port&secure=0&region=r`."""
    location = parse_store_url(url, "artifact store")
    if isinstance(location, Path):
        from modelreg.artifacts.fs import FilesystemBlobStore

        return FilesystemBlobStore(location)
    from modelreg.artifacts.s3 import S3BlobStore

    return S3BlobStore(
        endpoint=location.endpoint,
        bucket=location.bucket,
        access_key=location.access_key,
        secret_key=location.secret_key,
        region=location.region,
        secure=location.secure,
    )

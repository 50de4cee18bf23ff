"""Choosing a SegmentStore adapter from a URL (the forms of MODELREG_ARTIFACTS)."""

from __future__ import annotations

from pathlib import Path

from modelreg.archive import SegmentStore
from modelreg.artifacts.config import parse_store_url

ARCHIVE_ENV = "MODELREG_ARCHIVE"


def open_segment_store(url: str) -> SegmentStore:
    """`file:///abs/path` or `s3://bucket/prefix?endpoint=host:port&secure=0&region=r`.

    S3 credentials come from MODELREG_S3_ACCESS_KEY and MODELREG_S3_SECRET_KEY.
    """
    location = parse_store_url(url, "archive")
    if isinstance(location, Path):
        from modelreg.archive.fs import FilesystemSegmentStore

        return FilesystemSegmentStore(location)
    from modelreg.archive.s3 import S3SegmentStore

    return S3SegmentStore(
        endpoint=location.endpoint,
        bucket=location.bucket,
        prefix=location.prefix,
        access_key=location.access_key,
        secret_key=location.secret_key,
        region=location.region,
        secure=location.secure,
    )

"""Content-addressed artifact storage: the BlobStore port and what every adapter shares.

A blob's address is its SHA-256: `blobs/sha256/ab/cd/<digest>`, so a file that
appears in many versions is stored once, and a stored blob can never hold the
wrong content as long as every write goes through `put_stream` (which hashes
before it commits) or is re-hashed by `verify` (presigned uploads).

Adapters: `FilesystemBlobStore` (the embedded default) and `S3BlobStore`
(minio client; S3, MinIO, moto). `open_blob_store(url)` picks one from a URL.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol

DIGEST_PATTERN = re.compile(r"^[0-9a-f]{64}$")
CHUNK_SIZE = 1024 * 1024


def blob_key(digest: str) -> str:
    """The object key of a blob; two levels of fan-out keep directories small."""
    if not DIGEST_PATTERN.fullmatch(digest):
        raise ValueError(f"not a lower-case hex sha256: {digest!r}")
    return f"blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}"


@dataclass(frozen=True, slots=True)
class BlobInfo:
    sha256: str
    size: int
    modified: datetime


class Check(StrEnum):
    OK = "ok"
    MISSING = "missing"
    WRONG_SIZE = "wrong_size"
    WRONG_SHA256 = "wrong_sha256"


@dataclass(frozen=True, slots=True)
class MultipartTarget:
    """Where a client PUTs the parts of a large blob, directly to the store."""

    upload_id: str
    part_size: int
    urls: list[str]


class BlobMismatch(ValueError):
    """Uploaded content does not match the digest or size it was declared with."""


class BlobStore(Protocol):
    @property
    def spool_dir(self) -> str | None:
        """Where uploads are spooled before commit (None: the system's temporary directory)."""
        ...

    async def stat(self, digest: str) -> BlobInfo | None:
        """The stored blob's size and last write time, or None."""

    def read(self, digest: str) -> AsyncIterator[bytes]:
        """The blob's content in chunks; FileNotFoundError when absent.

        Not `async def`: the adapters are async generators, so calling one returns
        the iterator itself, with nothing to await.
        """

    async def commit(self, spooled: Path, digest: str) -> bool:
        """Stores a local file (already hashed) at the digest's address; False if it was there."""

    async def delete(self, digest: str) -> None: ...

    async def list_blobs(self) -> list[BlobInfo]:
        """Every stored blob."""

    async def presigned_put(self, digest: str, expires: timedelta) -> str:
        """A URL a client may PUT the blob to directly, or "" when the store has none."""

    async def presigned_parts(self, digest: str, size: int, expires: timedelta) -> MultipartTarget | None:
        """Part URLs of a new multipart upload for a large blob; None: upload it whole."""

    async def complete_uploads(self, digest: str) -> None:
        """Completes a multipart upload of the blob from the parts the store holds (no-op without one).

        The service does this at finalize, so clients never report part ETags;
        an incomplete or wrong upload then fails verification like any other.
        """


async def spool(chunks: AsyncIterable[bytes], directory: str | None = None) -> tuple[Path, str, int]:
    """Writes chunks to a temporary file, hashing as it goes: (path, sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(prefix="modelreg-upload-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), digest.hexdigest(), size


async def put_stream(
    store: BlobStore,
    chunks: AsyncIterable[bytes],
    *,
    expected_sha256: str,
    expected_size: int,
) -> bool:
    """Stores streamed content only if it matches; True if newly stored, False if it was there."""
    path, digest, size = await spool(chunks, store.spool_dir)
    try:
        if size != expected_size:
            raise BlobMismatch(f"received {size} bytes, expected {expected_size}")
        if digest != expected_sha256:
            raise BlobMismatch(f"received content with sha256 {digest}, expected {expected_sha256}")
        return await store.commit(path, digest)
    finally:
        path.unlink(missing_ok=True)


async def verify(store: BlobStore, digest: str, size: int) -> Check:
    """Checks a stored blob by size and by re-hashing its content.

    Presigned uploads bypass the service, so a blob may sit at an address its
    content does not match; such a blob is deleted, so the client can upload again.
    """
    info = await store.stat(digest)
    if info is None:
        await store.complete_uploads(digest)
        info = await store.stat(digest)
    if info is None:
        return Check.MISSING
    if info.size != size:
        await store.delete(digest)
        return Check.WRONG_SIZE
    hasher = hashlib.sha256()
    async for chunk in store.read(digest):
        hasher.update(chunk)
    if hasher.hexdigest() != digest:
        await store.delete(digest)
        return Check.WRONG_SHA256
    return Check.OK

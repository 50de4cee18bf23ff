"""The filesystem BlobStore: the embedded default under MODELREG_HOME.

It has no presigned URLs (`presigned_put` returns ""): clients upload through
the streaming UploadArtifact RPC, which hashes before it commits.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelreg.artifacts import CHUNK_SIZE, DIGEST_PATTERN, BlobInfo, MultipartTarget, blob_key


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    @property
    def spool_dir(self) -> str:
        # Same filesystem as the blobs, so committing is an atomic rename.
        return str(self.root / "tmp")

    def _path(self, digest: str) -> Path:
        return self.root / blob_key(digest)

    async def stat(self, digest: str) -> BlobInfo | None:
        try:
            st = self._path(digest).stat()
        except FileNotFoundError:
            return None
        return BlobInfo(digest, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    async def read(self, digest: str) -> AsyncIterator[bytes]:
        with self._path(digest).open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, CHUNK_SIZE):
                yield chunk

    async def commit(self, spooled: Path, digest: str) -> bool:
        target = self._path(digest)
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{digest}.{os.getpid()}.{id(spooled)}")
        await asyncio.to_thread(shutil.copyfile, spooled, staged)
        os.replace(staged, target)  # atomic: readers see all of the blob or none
        return True

    async def delete(self, digest: str) -> None:
        self._path(digest).unlink(missing_ok=True)

    async def list_blobs(self) -> list[BlobInfo]:
        found = []
        for path in (self.root / "blobs" / "sha256").glob("*/*/*"):
            if DIGEST_PATTERN.fullmatch(path.name):
                st = path.stat()
                found.append(BlobInfo(path.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
        return sorted(found, key=lambda b: b.sha256)

    async def presigned_put(self, digest: str, expires: timedelta) -> str:
        return ""

    async def presigned_parts(self, digest: str, size: int, expires: timedelta) -> MultipartTarget | None:
        return None

    async def complete_uploads(self, digest: str) -> None:
        return None

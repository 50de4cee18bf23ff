"""The filesystem SegmentStore: each write goes to a temporary file, is fsynced, then
renamed into place (and the directory fsynced), so a crash leaves the old bytes or the new."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


class FilesystemSegmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"{name!r} is outside the archive")
        return path

    def _write(self, name: str, data: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def write(self, name: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, name, data)

    async def read(self, name: str) -> bytes:
        return await asyncio.to_thread(self._path(name).read_bytes)

    async def exists(self, name: str) -> bool:
        return self._path(name).is_file()

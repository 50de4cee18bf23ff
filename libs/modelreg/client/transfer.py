"""Moving artifact bytes: hashing a directory into a manifest, uploading the missing
blobs (presigned PUT, or the streaming gRPC fallback), and verified downloads."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from modelreg.gen.versioning.v1 import versioning_pb2

CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: Path
    relative: str
    size: int
    sha256: str
    media_type: str

    def manifest_entry(self) -> versioning_pb2.ArtifactFile:
        return versioning_pb2.ArtifactFile(
            path=self.relative, size=self.size, sha256=self.sha256, media_type=self.media_type
        )


class Meter:
    """A rich progress bar with MB/s and ETA, or nothing when not wanted."""

    def __init__(self, enabled: bool | None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Progress | None = None

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Task]:
        if not self.enabled:
            yield Task(None, None)
            return
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        with progress:
            yield Task(progress, progress.add_task(description, total=total))


@dataclass
class Task:
    progress: Progress | None
    task_id: TaskID | None

    def advance(self, amount: int) -> None:
        if self.progress is not None and self.task_id is not None:
            self.progress.advance(self.task_id, amount)


def scan(root: Path, meter: Meter) -> list[LocalFile]:
    """Every file under `root` (or `root` itself), hashed."""
    root = root.resolve()
    paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    total = sum(p.stat().st_size for p in paths)
    files = []
    with meter.task(f"hashing {len(paths)} files", total) as task:
        for path in paths:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while block := handle.read(CHUNK):
                    digest.update(block)
                    task.advance(len(block))
            relative = path.relative_to(root).as_posix() if root.is_dir() else path.name
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            files.append(LocalFile(path, relative, path.stat().st_size, digest.hexdigest(), media_type))
    return files


class _CountingReader:
    """A file wrapper that reports what http.client has read from it."""

    def __init__(self, handle: BinaryIO, task: Task) -> None:
        self._handle = handle
        self._task = task

    def read(self, size: int = -1) -> bytes:
        block = self._handle.read(size)
        self._task.advance(len(block))
        return block


def put_presigned(url: str, file: LocalFile, task: Task) -> None:
    with file.path.open("rb") as handle:
        request = urllib.request.Request(
            url,
            data=_CountingReader(handle, task),
            method="PUT",
            # Without an explicit octet-stream type some S3 servers store a form body.
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(file.size)},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            if response.status >= 300:
                raise OSError(f"upload of {file.relative} failed with HTTP {response.status}")


class _Slice:
    """A window of a file, read as a file object, for one part of a multipart upload."""

    def __init__(self, handle: BinaryIO, length: int, task: Task) -> None:
        self._handle = handle
        self._left = length
        self._task = task

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        block = self._handle.read(size)
        self._left -= len(block)
        self._task.advance(len(block))
        return block


def put_presigned_parts(urls: list[str], part_size: int, file: LocalFile, task: Task) -> None:
    """Uploads part i of the file to urls[i]; the server completes the multipart upload."""
    with file.path.open("rb") as handle:
        for index, url in enumerate(urls):
            length = min(part_size, file.size - index * part_size)
            handle.seek(index * part_size)
            request = urllib.request.Request(
                url,
                data=_Slice(handle, length, task),
                method="PUT",
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)},
            )
            with urllib.request.urlopen(request, timeout=300) as response:
                if response.status >= 300:
                    raise OSError(f"part {index + 1} of {file.relative} failed with HTTP {response.status}")


async def stream_chunks(
    version: str, file: LocalFile, task: Task
) -> AsyncIterator[versioning_pb2.UploadArtifactRequest]:
    yield versioning_pb2.UploadArtifactRequest(
        header=versioning_pb2.UploadArtifactRequest.Header(name=version, path=file.relative)
    )
    with file.path.open("rb") as handle:
        while block := handle.read(CHUNK):
            task.advance(len(block))
            yield versioning_pb2.UploadArtifactRequest(chunk=block)


def safe_destination(root: Path, relative: str) -> Path:
    """Where a manifest path lands under `root`; a path escaping it is refused."""
    target = (root / relative).resolve()
    if root.resolve() not in target.parents:
        raise ValueError(f"manifest path {relative!r} escapes the download directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def replace_atomically(partial: Path, target: Path) -> None:
    os.replace(partial, target)

"""The BlobStore contract, written once and run against both adapters: the filesystem
(a tmp dir) and S3 (moto's server through the minio client)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from modelreg.artifacts import BlobMismatch, BlobStore, Check, blob_key, put_stream, verify
from modelreg.artifacts.config import open_blob_store
from modelreg.artifacts.fs import FilesystemBlobStore
from modelreg.devstack.s3 import MotoS3Server
from tests.integration.versioning.conftest import s3_store
from tests.integration.versioning.helpers import http_put, sha


@pytest.fixture(params=["filesystem", "s3"])
def store(request, tmp_path: Path, moto_s3: MotoS3Server) -> BlobStore:
    if request.param == "filesystem":
        return FilesystemBlobStore(tmp_path / "artifacts")
    return s3_store(moto_s3, f"contract-{uuid.uuid4().hex[:12]}")


async def chunks(content: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(content), size):
        yield content[i : i + size]


async def read_all(store: BlobStore, digest: str) -> bytes:
    return b"".join([c async for c in store.read(digest)])


async def test_put_stream_stores_once_under_the_digest(store: BlobStore) -> None:
    content = os.urandom(5000)
    digest = sha(content)
    assert await store.stat(digest) is None
    assert await put_stream(store, chunks(content), expected_sha256=digest, expected_size=len(content))
    assert not await put_stream(store, chunks(content), expected_sha256=digest, expected_size=len(content))
    info = await store.stat(digest)
    assert info is not None and info.size == 5000
    assert await read_all(store, digest) == content
    assert [b.sha256 for b in await store.list_blobs()] == [digest]
    assert await verify(store, digest, 5000) is Check.OK


async def test_put_stream_refuses_content_that_does_not_match(store: BlobStore) -> None:
    content = os.urandom(100)
    with pytest.raises(BlobMismatch):
        await put_stream(store, chunks(content), expected_sha256=sha(b"other"), expected_size=100)
    with pytest.raises(BlobMismatch):
        await put_stream(store, chunks(content), expected_sha256=sha(content), expected_size=99)
    assert await store.list_blobs() == []


async def test_verify_reports_and_removes_bad_blobs(store: BlobStore, tmp_path: Path) -> None:
    content = os.urandom(64)
    digest = sha(content)
    assert await verify(store, digest, 64) is Check.MISSING
    wrong = tmp_path / "wrong"
    wrong.write_bytes(os.urandom(64))
    await store.commit(wrong, digest)  # what a bad presigned upload leaves behind
    assert await verify(store, digest, 63) is Check.WRONG_SIZE
    assert await store.stat(digest) is None
    await store.commit(wrong, digest)
    assert await verify(store, digest, 64) is Check.WRONG_SHA256
    assert await store.stat(digest) is None


async def test_delete_and_missing_reads(store: BlobStore) -> None:
    content = b"hello"
    await put_stream(store, chunks(content), expected_sha256=sha(content), expected_size=5)
    await store.delete(sha(content))
    await store.delete(sha(content))  # idempotent
    assert await store.stat(sha(content)) is None
    with pytest.raises(FileNotFoundError):
        await read_all(store, sha(content))


async def test_presigned_put_where_supported(store: BlobStore) -> None:
    content = os.urandom(2000)
    url = await store.presigned_put(sha(content), timedelta(minutes=5))
    if isinstance(store, FilesystemBlobStore):
        assert url == ""  # documented: the filesystem store uploads through the API
        return
    assert await http_put(url, content) == 200
    assert await verify(store, sha(content), len(content)) is Check.OK


def test_keys_are_content_addresses() -> None:
    digest = sha(b"x")
    assert blob_key(digest) == f"blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    with pytest.raises(ValueError):
        blob_key("../../etc/passwd")


def test_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(tmp_path.as_uri()), FilesystemBlobStore)
    s3 = open_blob_store("s3://bucket?endpoint=127.0.0.1:9000&secure=0")
    assert type(s3).__name__ == "S3BlobStore"
    with pytest.raises(ValueError):
        open_blob_store("ftp://x")


async def test_large_blobs_upload_in_presigned_parts_where_supported(store: BlobStore) -> None:
    content = os.urandom(6 * 1024 * 1024 + 123)
    digest = sha(content)
    target = await store.presigned_parts(digest, len(content), timedelta(minutes=5))
    if isinstance(store, FilesystemBlobStore):
        assert target is None
        return
    assert target is not None and len(target.urls) == 2
    assert await store.presigned_parts(digest, 1000, timedelta(minutes=5)) is None  # small: one PUT
    for i, url in enumerate(target.urls):
        assert await http_put(url, content[i * target.part_size : (i + 1) * target.part_size]) == 200
    assert await store.stat(digest) is None  # not an object until completed
    assert await verify(store, digest, len(content)) is Check.OK  # completes, then re-hashes
    assert await read_all(store, digest) == content

"""200 MB artifacts through both upload paths, end to end through the SDK, and a
corrupted blob that must not be served quietly."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from pathlib import Path

import pytest
import structlog

from modelreg.artifacts import blob_key
from modelreg.artifacts.s3 import S3BlobStore
from modelreg.client import AsyncRegistry, Endpoints, IntegrityError
from modelreg.gen.versioning.v1 import versioning_pb2 as pb
from modelreg.runtime.host import ServiceHost
from tests.helpers import unique

log = structlog.get_logger(__name__)
SIZE = 200 * 1024 * 1024


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    # Fresh random bytes per test: a blob the store already has would not be uploaded at all.
    path = tmp_path / "in" / "weights.bin"
    path.parent.mkdir()
    with path.open("wb") as handle:
        for _ in range(SIZE // (8 * 1024 * 1024)):
            handle.write(os.urandom(8 * 1024 * 1024))
    return path


def endpoints(catalog_host: ServiceHost, versioning_host: ServiceHost) -> Endpoints:
    return Endpoints(catalog=f"127.0.0.1:{catalog_host.port}", versioning=f"127.0.0.1:{versioning_host.port}")


@pytest.mark.parametrize("direct", [True, False], ids=["presigned-multipart", "grpc-streaming"])
async def test_200_mb_up_and_down(
    catalog_host: ServiceHost, versioning_host: ServiceHost, big_file: Path, tmp_path: Path, direct: bool
) -> None:
    model = f"{unique('big')}/m"
    async with AsyncRegistry(endpoints(catalog_host, versioning_host), timeout=300) as registry:
        await registry.catalog.register_model(model)
        started = time.perf_counter()
        version = await registry.versioning.create_version(
            model, artifacts=big_file, progress=False, direct_upload=direct
        )
        up = time.perf_counter() - started
        assert version.state == pb.ModelVersion.STATE_READY
        started = time.perf_counter()
        await registry.versioning.download(f"{model}/1", tmp_path / "out", progress=False)
        down = time.perf_counter() - started
    digest = await asyncio.to_thread(lambda: hashlib.sha256((tmp_path / "out" / "weights.bin").read_bytes()))
    assert digest.hexdigest() == version.files[0].sha256
    log.info(
        "artifact_throughput",
        path="presigned-multipart" if direct else "grpc-streaming",
        upload_mb_s=round(SIZE / up / 1e6, 1),
        download_mb_s=round(SIZE / down / 1e6, 1),
    )


async def test_a_corrupted_blob_fails_the_download_loudly(
    catalog_host: ServiceHost, versioning_host: ServiceHost, versioning_blobs: S3BlobStore, tmp_path: Path
) -> None:
    model = f"{unique('rot')}/m"
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "model.bin").write_bytes(os.urandom(3_000_000))
    async with AsyncRegistry(endpoints(catalog_host, versioning_host)) as registry:
        await registry.catalog.register_model(model)
        version = await registry.versioning.create_version(model, artifacts=artifacts, progress=False)
        digest = version.files[0].sha256
        rotten = bytearray((artifacts / "model.bin").read_bytes())
        rotten[1_000_000] ^= 0xFF  # same size, one flipped byte: bit rot in the bucket
        versioning_blobs.client.put_object(
            versioning_blobs.bucket, blob_key(digest), io.BytesIO(bytes(rotten)), len(rotten)
        )
        with pytest.raises(IntegrityError) as error:
            await registry.versioning.download(f"{model}/1", tmp_path / "out", progress=False)
    assert digest in str(error.value)
    assert not (tmp_path / "out" / "model.bin").exists()
    assert not (tmp_path / "out" / "model.bin.partial").exists()

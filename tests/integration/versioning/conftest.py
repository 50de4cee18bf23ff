"""Fixtures for the versioning service: a real host (Tansu, PostgreSQL, moto S3) and helpers
to create models through the real catalog service."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, cast

import grpc
import pytest

from modelreg.artifacts.s3 import S3BlobStore
from modelreg.devstack.s3 import MotoS3Server
from modelreg.eventlog import TOKEN_METADATA_KEY
from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.helpers import serving, unique

if TYPE_CHECKING:
    from modelreg.gen.catalog.v1.catalog_pb2_grpc import CatalogServiceAsyncStub
    from modelreg.gen.versioning.v1.versioning_pb2_grpc import VersioningServiceAsyncStub

CreateModel = Callable[[], Awaitable[tuple[str, str]]]


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3Server]:
    with MotoS3Server.start() as server:
        yield server


MIB = 1024 * 1024


def s3_store(server: MotoS3Server, bucket: str) -> S3BlobStore:
    # S3's smallest parts, so that multipart uploads can be tested with 6 MiB files.
    return S3BlobStore(
        endpoint=server.endpoint,
        bucket=bucket,
        access_key=server.access_key,
        secret_key=server.secret_key,
        region=server.region,
        secure=False,
        multipart_threshold=5 * MIB,
        part_size=5 * MIB,
    )


@pytest.fixture(scope="session")
def versioning_blobs(moto_s3: MotoS3Server) -> S3BlobStore:
    # moto keeps buckets process-wide: a unique bucket per session.
    return s3_store(moto_s3, f"artifacts-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
async def versioning_host(settings: Settings, versioning_blobs: S3BlobStore) -> AsyncIterator[ServiceHost]:
    from modelreg.versioning.main import spec

    async with serving(spec(blobs=lambda: versioning_blobs), settings) as host:
        yield host


@pytest.fixture(scope="session")
async def versioning_stub(versioning_host: ServiceHost) -> AsyncIterator[VersioningServiceAsyncStub]:
    from modelreg.gen.versioning.v1 import versioning_pb2_grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{versioning_host.port}") as channel:
        # grpc ships no types: the channel is Any, which would pick the stub's sync overload.
        yield cast("VersioningServiceAsyncStub", versioning_pb2_grpc.VersioningServiceStub(channel))


@pytest.fixture
def create_model(catalog_stub: CatalogServiceAsyncStub) -> CreateModel:
    """Registers a fresh model in the catalog; returns (model name, catalog consistency token)."""

    async def create() -> tuple[str, str]:
        call = catalog_stub.CreateRegisteredModel(
            catalog_pb2.CreateRegisteredModelRequest(
                parent=f"namespaces/{unique('ns')}",
                registered_model_id=unique("m"),
                registered_model=catalog_pb2.RegisteredModel(),
            )
        )
        model = await call
        return model.name, dict(await call.trailing_metadata())[TOKEN_METADATA_KEY]

    return create

"""Fixtures for the log archive: a catalog service on topics of its own (so the archive
holds exactly what these tests wrote), segment stores on the filesystem and in moto's S3,
and a second, empty Tansu to restore into."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import grpc
import pytest

from modelreg.archive import SegmentStore
from modelreg.archive.fs import FilesystemSegmentStore
from modelreg.archive.s3 import S3SegmentStore
from modelreg.devstack import TansuBroker
from modelreg.devstack.s3 import MotoS3Server
from modelreg.runtime.settings import Settings
from tests.helpers import serving, unique, with_own_topics
from tests.integration.versioning.conftest import moto_s3

if TYPE_CHECKING:
    from modelreg.gen.catalog.v1.catalog_pb2_grpc import CatalogServiceAsyncStub
    from modelreg.runtime.host import ServiceHost

__all__ = ["moto_s3"]


@pytest.fixture(scope="module")
def archive_settings(settings: Settings) -> Settings:
    return with_own_topics(settings, "archive")


@pytest.fixture(scope="module")
def archive_schema() -> str:
    return f"archive_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def archived_catalog(archive_settings: Settings, archive_schema: str) -> AsyncIterator[ServiceHost]:
    from modelreg.catalog.main import spec

    async with serving(spec(archive_schema), archive_settings) as host:
        yield host


@pytest.fixture(scope="module")
async def archive_catalog_stub(archived_catalog: ServiceHost) -> AsyncIterator[CatalogServiceAsyncStub]:
    from modelreg.gen.catalog.v1 import catalog_pb2_grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{archived_catalog.port}") as channel:
        yield cast("CatalogServiceAsyncStub", catalog_pb2_grpc.CatalogServiceStub(channel))


@pytest.fixture
def empty_broker() -> Iterator[TansuBroker]:
    with TansuBroker.start() as broker:
        yield broker


@pytest.fixture(params=["filesystem", "s3"])
def segment_store(request: pytest.FixtureRequest, tmp_path: Path, moto_s3: MotoS3Server) -> SegmentStore:
    if request.param == "filesystem":
        return FilesystemSegmentStore(tmp_path / "archive")
    return s3_segment_store(moto_s3)


def s3_segment_store(server: MotoS3Server) -> S3SegmentStore:
    return S3SegmentStore(
        endpoint=server.endpoint,
        bucket=f"archive-{uuid.uuid4().hex[:12]}",
        prefix="log",
        access_key=server.access_key,
        secret_key=server.secret_key,
        secure=False,
    )


async def create_models(stub: CatalogServiceAsyncStub, count: int, namespace: str | None = None) -> list[str]:
    """Models with a description update each, so streams have chains longer than one."""
    from google.protobuf import field_mask_pb2

    from modelreg.gen.catalog.v1 import catalog_pb2

    namespace = namespace or unique("ns")
    names = []
    for _ in range(count):
        created = await stub.CreateRegisteredModel(
            catalog_pb2.CreateRegisteredModelRequest(
                parent=f"namespaces/{namespace}",
                registered_model_id=unique("m"),
                registered_model=catalog_pb2.RegisteredModel(description="first"),
            )
        )
        await stub.UpdateRegisteredModel(
            catalog_pb2.UpdateRegisteredModelRequest(
                registered_model=catalog_pb2.RegisteredModel(name=created.name, description="second"),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            )
        )
        names.append(created.name)
    return names

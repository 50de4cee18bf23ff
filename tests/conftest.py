"""Fixtures that start real servers: Tansu, PostgreSQL (and moto S3 where asked).

Each test session gets its own database and its own topic prefix; servers
listen on 127.0.0.1 on ports chosen here and are stopped at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, cast

import grpc
import pytest

from modelreg.devstack import LocalStack, create_database, drop_database
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.runtime.settings import Settings
from tests.helpers import serving

if TYPE_CHECKING:  # the services are imported where a test first needs one
    from modelreg.gen.catalog.v1.catalog_pb2_grpc import CatalogServiceAsyncStub
    from modelreg.runtime.host import ServiceHost


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    with LocalStack.start() as stack:
        yield stack


@pytest.fixture(scope="session")
async def database(local_stack: LocalStack) -> AsyncIterator[str]:
    name = f"modelreg_test_{uuid.uuid4().hex[:12]}"
    dsn = await create_database(local_stack.postgres.admin_dsn, name)
    yield dsn
    await drop_database(local_stack.postgres.admin_dsn, name)


@pytest.fixture(scope="session")
def settings(local_stack: LocalStack, database: str) -> Settings:
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=local_stack.kafka.bootstrap_servers,
            topic_prefix=f"run-{uuid.uuid4().hex[:8]}.",
        ),
        pg_dsn=database,
        token_wait_s=1.0,
    )


@pytest.fixture(scope="session")
async def catalog_host(settings: Settings) -> AsyncIterator[ServiceHost]:
    from modelreg.catalog.main import spec

    async with serving(spec(), settings) as host:
        yield host


@pytest.fixture(scope="session")
async def catalog_channel(catalog_host: ServiceHost) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{catalog_host.port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def catalog_stub(catalog_channel: grpc.aio.Channel) -> CatalogServiceAsyncStub:
    from modelreg.gen.catalog.v1 import catalog_pb2_grpc

    # grpc ships no types: the channel is Any, which would pick the stub's sync overload.
    return cast("CatalogServiceAsyncStub", catalog_pb2_grpc.CatalogServiceStub(catalog_channel))

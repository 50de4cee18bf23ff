"""A PostgreSQL restart under load: the service answers UNAVAILABLE while the database is away (never
INTERNAL), and the SDK retries those calls with the same request_id, so every write it was asked for
succeeds exactly once. The server restarted is a private one, never the machine's shared server."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import grpc
import pytest

from modelreg.client import AsyncRegistry
from modelreg.client.connection import Endpoints
from modelreg.devstack import PostgresServer, TansuBroker, create_database
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from modelreg.gen.catalog.v1 import catalog_pb2_grpc
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings


async def test_a_postgres_restart_is_unavailable_and_sdk_writes_all_land_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelreg.catalog.main import spec

    monkeypatch.delenv("MODELREG_PG_DSN", raising=False)  # a server of our own, to restart
    namespace = f"restart{uuid.uuid4().hex[:6]}"
    with TansuBroker.start() as broker, PostgresServer.start() as postgres:
        dsn = await create_database(postgres.admin_dsn, "restart")
        host = ServiceHost(spec(), Settings(kafka=KafkaSettings(broker.bootstrap_servers), pg_dsn=dsn))
        await host.start(port=0)
        try:
            address = f"127.0.0.1:{host.port}"
            registry = AsyncRegistry(Endpoints(catalog=address), retries=10)
            first = await registry.catalog.register_model(f"{namespace}/m0")
            codes: list[grpc.StatusCode] = []
            registered: list[str] = []

            async def reads(stub: catalog_pb2_grpc.CatalogServiceStub, until: asyncio.Future[None]) -> None:
                while not until.done():
                    try:
                        await stub.GetRegisteredModel(
                            pb.GetRegisteredModelRequest(name=first.name), timeout=20
                        )
                        codes.append(grpc.StatusCode.OK)
                    except grpc.aio.AioRpcError as error:
                        codes.append(error.code())
                    await asyncio.sleep(0.01)

            async def writes(until: asyncio.Future[None]) -> None:
                i = 0
                while not until.done() or i < 5:
                    i += 1
                    model = await registry.catalog.register_model(f"{namespace}/w{i}")
                    registered.append(model.name)

            async with grpc.aio.insecure_channel(address) as channel:
                stub = catalog_pb2_grpc.CatalogServiceStub(channel)
                restarted = asyncio.ensure_future(asyncio.to_thread(postgres.restart))
                await asyncio.wait_for(asyncio.gather(reads(stub, restarted), writes(restarted)), 180)
                await restarted
            await registry.close()

            assert grpc.StatusCode.UNAVAILABLE in codes, "the restart was not noticed"
            assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
            conn = await asyncpg.connect(dsn)
            try:
                for name in registered:
                    accepted = await conn.fetchval(
                        "SELECT count(*) FROM catalog.event_outcomes "
                        "WHERE stream = $1 AND verdict = 'accepted'",
                        name,
                    )
                    assert accepted == 1, name
            finally:
                await conn.close()
        finally:
            await host.stop(grace=0.1)

"""With its database gone, a service answers UNAVAILABLE (retryable), never INTERNAL."""

from __future__ import annotations

import grpc
import pytest

from modelreg.devstack import PostgresServer, TansuBroker, create_database
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from modelreg.gen.catalog.v1 import catalog_pb2_grpc
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings


async def test_database_outage_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelreg.catalog.main import spec

    monkeypatch.delenv("MODELREG_PG_DSN", raising=False)  # a server of our own, to stop
    with TansuBroker.start() as broker, PostgresServer.start() as postgres:
        dsn = await create_database(postgres.admin_dsn, "outage")
        host = ServiceHost(spec(), Settings(kafka=KafkaSettings(broker.bootstrap_servers), pg_dsn=dsn))
        await host.start(port=0)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
                stub = catalog_pb2_grpc.CatalogServiceStub(channel)
                created = await stub.CreateRegisteredModel(
                    pb.CreateRegisteredModelRequest(
                        parent="namespaces/o", registered_model_id="m", registered_model=pb.RegisteredModel()
                    )
                )
                postgres.stop()
                for _ in range(3):
                    with pytest.raises(grpc.aio.AioRpcError) as error:
                        await stub.GetRegisteredModel(
                            pb.GetRegisteredModelRequest(name=created.name), timeout=10
                        )
                    assert error.value.code() == grpc.StatusCode.UNAVAILABLE, error.value.details()
        finally:
            await host.stop(grace=0.1)

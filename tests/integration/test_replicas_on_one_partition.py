"""Two replicas of a service on one partition, with writes from both racing on shared models:
every write is answered, none with INTERNAL. Issue 13 saw "projected past ... without an
outcome" once with two replicas on one partition; the one path found to give it is a record
of the service's own that its fold REJECTED (test_signed_log.py), not the local fold it was
blamed on. This guards both verdict paths: each replica folding its own appends from the
produce response (the default) and waiting for its projector's fetch (MODELREG_LOCAL_FOLD=0)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter

import grpc
import pytest
from google.protobuf import field_mask_pb2

from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from modelreg.runtime.settings import Settings
from tests.helpers import serving

WRITERS_PER_REPLICA = 8
WRITES_PER_WRITER = 25
SHARED_MODELS = 4


@pytest.mark.parametrize("local_fold", [True, False], ids=["local-fold", "fetch-only"])
@pytest.mark.parametrize("group", [False, True], ids=["every-replica-folds", "consumer-group"])
async def test_two_replicas_on_one_partition_answer_every_write(
    settings: Settings, group: bool, local_fold: bool
) -> None:
    from modelreg.catalog.main import spec

    run = uuid.uuid4().hex[:8]
    replica_settings = dataclasses.replace(
        settings,
        kafka=dataclasses.replace(settings.kafka, topic_prefix=f"replicas-{run}."),
        partitions=1,
        projector_group=group,
        local_fold=local_fold,
    )
    codes: Counter[str] = Counter()
    details: list[str] = []
    async with serving(spec(), replica_settings) as first, serving(spec(), replica_settings) as second:
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") for host in (first, second)]
        stubs = [catalog_pb2_grpc.CatalogServiceStub(c) for c in channels]
        ns = f"lf{run}"
        for m in range(SHARED_MODELS):
            await stubs[0].CreateRegisteredModel(
                catalog_pb2.CreateRegisteredModelRequest(
                    parent=f"namespaces/{ns}",
                    registered_model_id=f"shared{m}",
                    registered_model=catalog_pb2.RegisteredModel(),
                ),
                timeout=30,
            )

        async def writer(replica: int, w: int) -> None:
            stub = stubs[replica]
            for i in range(WRITES_PER_WRITER):
                try:
                    if i % 2:
                        await stub.CreateRegisteredModel(
                            catalog_pb2.CreateRegisteredModelRequest(
                                parent=f"namespaces/{ns}",
                                registered_model_id=f"r{replica}w{w}i{i}",
                                registered_model=catalog_pb2.RegisteredModel(),
                                request_id=f"{run}-{replica}-{w}-{i}",
                            ),
                            timeout=30,
                        )
                    else:
                        name = f"namespaces/{ns}/models/shared{(w + i) % SHARED_MODELS}"
                        await stub.UpdateRegisteredModel(
                            catalog_pb2.UpdateRegisteredModelRequest(
                                registered_model=catalog_pb2.RegisteredModel(
                                    name=name, description=f"{replica}/{w}/{i}"
                                ),
                                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
                                request_id=f"{run}-{replica}-{w}-{i}",
                            ),
                            timeout=30,
                        )
                    codes["OK"] += 1
                except grpc.aio.AioRpcError as error:
                    codes[error.code().name] += 1
                    details.append(f"{error.code().name}: {error.details()}")

        try:
            await asyncio.gather(*(writer(r, w) for r in range(2) for w in range(WRITERS_PER_REPLICA)))
        finally:
            for c in channels:
                await c.close()
    print(dict(codes))
    assert codes["OK"] + codes["ABORTED"] == 2 * WRITERS_PER_REPLICA * WRITES_PER_WRITER, details[:5]
    assert codes["INTERNAL"] == 0, details[:5]

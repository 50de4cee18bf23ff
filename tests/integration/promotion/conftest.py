"""Fixtures for the promotion service: a real host on Tansu and PostgreSQL, principals
with bearer tokens and roles, and a writer of versioning and lineage facts.

The facts are appended to the real versioning and lineage topics in their real
envelope format (hash-chained, expected revisions), which is exactly what the
promotion reference caches consume; the versioning and lineage services
themselves are not needed to produce them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import grpc
import pytest
from google.protobuf.message import Message

from modelreg.eventlog import GENESIS_HASH, ConsistencyToken, EventContext, build_envelope
from modelreg.eventlog.kafka import KafkaEventLog
from modelreg.gen.lineage.v1 import events_pb2 as lineage_events
from modelreg.gen.lineage.v1 import lineage_pb2
from modelreg.gen.promotion.v1 import promotion_pb2_grpc
from modelreg.gen.versioning.v1 import events_pb2 as versioning_events
from modelreg.gen.versioning.v1 import versioning_pb2
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.helpers import with_own_topics

PRINCIPALS = {
    "alice": "editor",
    "bob": "approver",
    "carol": "approver",
    "dave": "approver",
    "root": "admin",
    "victor": "viewer",
}
TOKENS = ",".join(f"t-{p}={p}" for p in PRINCIPALS)
ROLES = ",".join(f"{p}={r}@*" for p, r in PRINCIPALS.items())


def auth(principal: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer t-{principal}")]


@contextmanager
def promotion_env() -> Iterator[None]:
    """Auth and roles are read when a host starts; other services' fixtures stay in open mode."""
    saved = {k: os.environ.get(k) for k in ("MODELREG_AUTH_TOKENS", "MODELREG_ROLES")}
    os.environ["MODELREG_AUTH_TOKENS"] = TOKENS
    os.environ["MODELREG_ROLES"] = ROLES
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def start_promotion(
    settings: Settings, *, schema: str = "promotion", project: bool = True
) -> ServiceHost:
    from modelreg.promotion.main import spec

    host = ServiceHost(spec(schema), settings)
    with promotion_env():
        await host.start(port=0, project=project)
    return host


@pytest.fixture(scope="session")
def promotion_settings(settings: Settings) -> Settings:
    """These tests put versioning and lineage facts on the broker directly. (A distinct
    fixture name, so session fixtures elsewhere keep the shared `settings`.)"""
    return with_own_topics(settings, "promotion")


@pytest.fixture(scope="session")
async def promotion_host(promotion_settings: Settings) -> AsyncIterator[ServiceHost]:
    host = await start_promotion(promotion_settings)
    yield host
    await host.stop()


@pytest.fixture(scope="session")
async def promotion_stub(
    promotion_host: ServiceHost,
) -> AsyncIterator[promotion_pb2_grpc.PromotionServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{promotion_host.port}") as channel:
        yield promotion_pb2_grpc.PromotionServiceStub(channel)


@dataclass
class Facts:
    """Appends versioning and lineage facts and waits until the promotion caches hold them."""

    settings: Settings
    host: ServiceHost
    log: KafkaEventLog
    heads: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)

    async def _append(self, logical_topic: str, stream: str, payload_field: str, payload: Message) -> None:
        revision, prev = self.heads.get((logical_topic, stream), (0, GENESIS_HASH))
        envelope = build_envelope(
            stream=stream,
            payload_field=payload_field,
            payload=payload,
            expected_revision=revision,
            prev_hash=prev,
            source="promotion-tests",
            context=EventContext(actor="pipeline"),
        )
        topic = self.settings.kafka.topic(logical_topic)
        position = await self.log.append(topic, envelope)
        self.heads[(logical_topic, stream)] = (revision + 1, envelope.hash)
        assert self.host.progress is not None
        assert await self.host.progress.wait_for(ConsistencyToken.after([position]).required, 10.0)

    async def version(
        self,
        model: str,
        number: int,
        *,
        metrics: dict[str, float] | None = None,
        signature: bool = True,
        ready: bool = True,
    ) -> None:
        version = versioning_pb2.ModelVersion(
            name=f"{model}/versions/{number}", version=number, metrics=metrics or {"auc": 0.95}
        )
        if signature:
            version.signature.inputs.add(name="x")
        await self._append(
            "modelreg.versioning.v1",
            model,
            "model_version_created",
            versioning_events.ModelVersionCreated(model_version=version),
        )
        if ready:
            await self.finalize(model, number)

    async def finalize(self, model: str, number: int) -> None:
        await self._append(
            "modelreg.versioning.v1",
            model,
            "model_version_finalized",
            versioning_events.ModelVersionFinalized(name=f"{model}/versions/{number}"),
        )

    async def deprecate(self, model: str, number: int) -> None:
        await self._append(
            "modelreg.versioning.v1",
            model,
            "model_version_deprecated",
            versioning_events.ModelVersionDeprecated(name=f"{model}/versions/{number}", reason="old"),
        )

    async def delete(self, model: str, number: int) -> None:
        await self._append(
            "modelreg.versioning.v1",
            model,
            "model_version_deleted",
            versioning_events.ModelVersionDeleted(name=f"{model}/versions/{number}", reason="gone"),
        )

    async def lineage(self, model: str, number: int) -> None:
        await self._append(
            "modelreg.lineage.v1",
            model,
            "lineage_recorded",
            lineage_events.LineageRecorded(
                record=lineage_pb2.LineageRecord(
                    name=f"{model}/versions/{number}/lineageRecords/r1",
                    model_version=f"{model}/versions/{number}",
                )
            ),
        )

    async def evaluation(
        self, model: str, number: int, dataset: str, metrics: dict[str, float], evaluated: datetime
    ) -> None:
        """An OFFLINE evaluation on `dataset` (any digest), as the lineage service records it."""
        evaluation = lineage_pb2.ModelEvaluation(
            model_version=f"{model}/versions/{number}",
            kind=lineage_pb2.ModelEvaluation.KIND_OFFLINE,
            dataset=lineage_pb2.Dataset(uri=dataset, digest="sha256:" + "e" * 64),
            metrics=metrics,
        )
        evaluation.evaluate_time.FromDatetime(evaluated)
        await self._append(
            "modelreg.lineage.v1",
            model,
            "evaluation_recorded",
            lineage_events.EvaluationRecorded(evaluation=evaluation),
        )


@pytest.fixture(scope="session")
async def facts(promotion_settings: Settings, promotion_host: ServiceHost) -> AsyncIterator[Facts]:
    log = KafkaEventLog(promotion_settings.kafka)
    await log.start()
    yield Facts(promotion_settings, promotion_host, log)
    await log.stop()

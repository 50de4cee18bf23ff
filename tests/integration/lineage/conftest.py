"""Fixtures for the lineage service: a running host, a stub, and a writer that puts
facts on the versioning, promotion and lineage topics of the real broker.

Versioning facts are produced here directly (with a correct hash chain per
stream), so these tests depend on the versioning topic's contract, not on the
versioning service being finished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, cast

import asyncpg
import grpc
import pytest
from google.protobuf.message import Message

from modelreg.eventlog import (
    ANY_REVISION,
    EMPTY_HEAD,
    ConsistencyToken,
    EventContext,
    Position,
    StreamHead,
    build_envelope,
)
from modelreg.eventlog.kafka import KafkaEventLog, KafkaSettings
from modelreg.gen.promotion.v1 import events_pb2 as promotion_events
from modelreg.gen.versioning.v1 import events_pb2 as versioning_events
from modelreg.gen.versioning.v1 import versioning_pb2
from modelreg.runtime.settings import Settings
from tests.helpers import serving, with_own_topics

if TYPE_CHECKING:  # the services are imported where a test first needs one
    from modelreg.gen.lineage.v1.lineage_pb2_grpc import LineageServiceAsyncStub
    from modelreg.runtime.host import ServiceHost

LINEAGE = "modelreg.lineage.v1"
VERSIONING = "modelreg.versioning.v1"
PROMOTION = "modelreg.promotion.v1"


class Writer:
    """Appends chained envelopes; remembers each stream's head per topic."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.log = KafkaEventLog(replace(kafka, linger_ms=2))
        self.heads: dict[tuple[str, str], StreamHead] = {}
        self.event_ids: list[str] = []

    async def append(
        self, topic: str, stream: str, field: str, payload: Message, *, any_revision: bool = False
    ) -> tuple[str, Position]:
        head = self.heads.get((topic, stream), EMPTY_HEAD)
        envelope = build_envelope(
            stream=stream,
            payload_field=field,
            payload=payload,
            expected_revision=ANY_REVISION if any_revision else head.revision,
            prev_hash=head.hash,
            source="lineage-tests",
            context=EventContext(actor="loader"),
        )
        self.heads[(topic, stream)] = StreamHead(head.revision + 1, envelope.hash)
        position = await self.log.append(self.kafka.topic(topic), envelope)
        return envelope.event_id, position

    async def rounds(
        self, topic: str, events: Sequence[tuple[str, str, Message]], *, any_revision: bool = False
    ) -> list[tuple[str, Position]]:
        """Appends many events: concurrently across streams, in order within a stream."""
        per_stream: dict[str, list[tuple[int, str, Message]]] = {}
        for i, (stream, field, payload) in enumerate(events):
            per_stream.setdefault(stream, []).append((i, field, payload))
        results: list[tuple[str, Position] | None] = [None] * len(events)

        async def one_stream(stream: str, items: list[tuple[int, str, Message]]) -> None:
            for i, field, payload in items:
                results[i] = await self.append(topic, stream, field, payload, any_revision=any_revision)

        await asyncio.gather(*(one_stream(s, items) for s, items in per_stream.items()))
        return [r for r in results if r is not None]

    async def create_versions(self, names: Sequence[str]) -> ConsistencyToken:
        """ModelVersionCreated facts for `namespaces/ns/models/m/versions/n` names."""
        events = []
        for name in names:
            model, _, number = name.rpartition("/versions/")
            version = versioning_pb2.ModelVersion(name=name, version=int(number))
            events.append(
                (model, "model_version_created", versioning_events.ModelVersionCreated(model_version=version))
            )
        return ConsistencyToken.after(p for _, p in await self.rounds(VERSIONING, events))

    async def delete_version(self, name: str) -> ConsistencyToken:
        model = name.rpartition("/versions/")[0]
        _, position = await self.append(
            VERSIONING, model, "model_version_deleted", versioning_events.ModelVersionDeleted(name=name)
        )
        return ConsistencyToken.after([position])

    async def move_pointer(self, model: str, pointer: str, version: int) -> ConsistencyToken:
        _, position = await self.append(
            PROMOTION,
            model,
            "pointer_moved",
            promotion_events.PointerMoved(model=model, pointer=pointer, version=version),
        )
        return ConsistencyToken.after([position])

    async def apply_transition(
        self, model: str, moved: Sequence[tuple[str, int]] = (), removed: Sequence[str] = ()
    ) -> ConsistencyToken:
        """A TransitionApplied fact, as the promotion service records an atomic move."""
        event = promotion_events.TransitionApplied(
            moved=[promotion_events.PointerMoved(model=model, pointer=p, version=v) for p, v in moved],
            removed=[promotion_events.PointerRemoved(model=model, pointer=p) for p in removed],
        )
        _, position = await self.append(PROMOTION, model, "transition_applied", event)
        return ConsistencyToken.after([position])


async def wait_projected(dsn: str, schema: str, token: ConsistencyToken, timeout: float = 60) -> None:
    """Until the schema's checkpoints have passed every position of the token."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            rows = await conn.fetch(f'SELECT topic, partition, next_offset FROM "{schema}".checkpoints')
            done = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
            if all(done.get(tp, 0) >= offset for tp, offset in token.required.items()):
                return
            assert time.monotonic() < deadline, "the lineage projector did not catch up"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def lineage_settings(settings: Settings) -> Settings:
    """These tests put versioning and promotion facts on the broker directly.
    (A distinct name rather than an override of `settings`: session fixtures
    elsewhere that use `settings` must not pick this one up.)"""
    return with_own_topics(settings, "lineage")


@pytest.fixture(scope="session")
async def lineage_host(lineage_settings: Settings) -> AsyncIterator[ServiceHost]:
    from modelreg.lineage.main import spec

    async with serving(spec(), lineage_settings) as host:
        yield host


@pytest.fixture(scope="session")
async def lineage_channel(lineage_host: ServiceHost) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{lineage_host.port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def lineage_stub(lineage_channel: grpc.aio.Channel) -> LineageServiceAsyncStub:
    from modelreg.gen.lineage.v1 import lineage_pb2_grpc

    # grpc ships no types: the channel is Any, which would pick the stub's sync overload.
    return cast("LineageServiceAsyncStub", lineage_pb2_grpc.LineageServiceStub(lineage_channel))


@pytest.fixture(scope="session")
async def writer(lineage_settings: Settings, lineage_host: ServiceHost) -> AsyncIterator[Writer]:
    w = Writer(lineage_settings.kafka)
    await w.log.start()
    yield w
    await w.log.stop()

"""Folding one batch of records into a schema, exactly once.

The read-model writes, the outcomes, the stream heads and the checkpoint all
commit in one transaction. The checkpoint row is locked and compared first, so
a zombie projector (one that lost its partition but still runs) cannot commit:
its expected offset no longer matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Protocol

import asyncpg
import structlog

from modelreg.eventlog import FoldState, Outcome, Position, StreamHead, Verdict, decode
from modelreg.eventlog.envelope import UndecodableRecord
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.projections.schema import progress_channel, quote_schema

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Record:
    """A record as read from the log; what a projector needs of an aiokafka ConsumerRecord."""

    offset: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    envelope: Envelope
    revision: int
    position: Position


class ProjectionHandler(Protocol):
    """A service's read model: its tables and how accepted events change them."""

    name: str
    read_model_tables: Sequence[str]
    """Tables this projection alone writes, in dependency order; used for digests and resets."""

    def ddl(self, schema: str) -> str: ...

    # Optional: `stream_scope: str`, a prefix for this topic's streams in the
    # schema's shared bookkeeping (stream_heads, event_outcomes). A reference
    # cache needs it when its topic keys streams like the service's own topic
    # (both key by model name); otherwise the two folds would judge each other's
    # events against the wrong stream head. The service's own fold leaves it unset.

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        """Writes the effect of accepted events, in log order, inside the caller's transaction."""


def stream_scope(handler: ProjectionHandler) -> str:
    """The prefix under which a handler's streams are kept in stream_heads and event_outcomes.

    A reference cache folds another service's topic into this schema, and that
    topic uses the same stream names (the model). Without a scope its heads would
    mix with the own topic's, and each fold would judge events by the other's
    revisions. A reference-cache handler sets `stream_scope` (e.g. "catalog:").
    """
    return getattr(handler, "stream_scope", "")


class Fenced(RuntimeError):
    """Another projector moved this partition's checkpoint: this one must re-seek."""

    def __init__(self, topic: str, partition: int, stored: int, expected: int) -> None:
        super().__init__(
            f"checkpoint of {topic}[{partition}] is at {stored}, this projector expected {expected}"
        )
        self.stored = stored


async def ensure_checkpoint(
    conn: asyncpg.Connection, schema: str, projection: str, topic: str, partition: int
) -> int:
    s = quote_schema(schema)
    await conn.execute(
        f"INSERT INTO {s}.checkpoints (projection, topic, partition, next_offset)"
        " VALUES ($1, $2, $3, 0) ON CONFLICT (topic, partition) DO NOTHING",
        projection,
        topic,
        partition,
    )
    return await conn.fetchval(
        f"SELECT next_offset FROM {s}.checkpoints WHERE topic = $1 AND partition = $2",
        topic,
        partition,
    )


async def load_fold_state(
    conn: asyncpg.Connection, schema: str, envelopes: Sequence[Envelope], scope: str = ""
) -> FoldState:
    """The slice of fold memory that this batch's events can touch."""
    s = quote_schema(schema)
    streams = list({scope + e.stream for e in envelopes})
    event_ids = [e.event_id for e in envelopes]
    requested = [(scope + e.stream, e.request_id) for e in envelopes if e.request_id]
    state = FoldState()
    for row in await conn.fetch(
        f"SELECT stream, revision, hash FROM {s}.stream_heads WHERE stream = ANY($1::text[])", streams
    ):
        state.heads[row["stream"][len(scope) :]] = StreamHead(row["revision"], bytes(row["hash"]))
    for row in await conn.fetch(
        f"SELECT event_id::text FROM {s}.event_outcomes WHERE event_id = ANY($1::uuid[])", event_ids
    ):
        state.known_event_ids.add(row["event_id"])
    if requested:
        for row in await conn.fetch(
            f"SELECT o.stream, o.request_id, o.event_id::text FROM {s}.event_outcomes o"
            " JOIN unnest($1::text[], $2::text[]) AS r(stream, request_id)"
            " ON o.stream = r.stream AND o.request_id = r.request_id"
            " WHERE o.verdict = 'accepted'",
            [stream for stream, _ in requested],
            [request for _, request in requested],
        ):
            state.accepted_requests[(row["stream"][len(scope) :], row["request_id"])] = row["event_id"]
    return state


async def apply_batch(
    conn: asyncpg.Connection,
    *,
    schema: str,
    handler: ProjectionHandler,
    topic: str,
    partition: int,
    expected_next_offset: int,
    records: Sequence[Record],
) -> int:
    """Folds `records` (consecutive, from one partition) and returns the new checkpoint."""
    s = quote_schema(schema)
    scope = stream_scope(handler)
    records = [r for r in records if r.offset >= expected_next_offset]
    if not records:
        return expected_next_offset
    next_offset = records[-1].offset + 1
    async with conn.transaction():
        # A lost commit is re-projected from the log with the same verdict, so
        # derived state may skip the wait for the WAL flush.
        await conn.execute("SET LOCAL synchronous_commit = off")
        stored = await conn.fetchval(
            f"SELECT next_offset FROM {s}.checkpoints WHERE topic = $1 AND partition = $2 FOR UPDATE",
            topic,
            partition,
        )
        if stored != expected_next_offset:
            raise Fenced(topic, partition, stored if stored is not None else -1, expected_next_offset)

        envelopes: list[tuple[Envelope, Position]] = []
        for record in records:
            try:
                envelopes.append((decode(record.value), Position(topic, partition, record.offset)))
            except UndecodableRecord as exc:
                # Not an event, so it can never count; skipping it keeps the fold total.
                log.warning(
                    "undecodable_record",
                    topic=topic,
                    partition=partition,
                    offset=record.offset,
                    error=str(exc),
                )
        state = await load_fold_state(conn, schema, [e for e, _ in envelopes], scope)
        outcomes: list[tuple[Outcome, Envelope, Position]] = []
        for envelope, position in envelopes:
            outcome = state.apply(envelope)
            if outcome is not None:
                outcomes.append((outcome, envelope, position))

        accepted = [
            AcceptedEvent(envelope, outcome.revision, position)
            for outcome, envelope, position in outcomes
            if outcome.verdict is Verdict.ACCEPTED
        ]
        if accepted:
            await handler.apply(conn, schema, accepted)
        if outcomes:
            await conn.copy_records_to_table(
                "event_outcomes",
                schema_name=schema,
                columns=[
                    "event_id",
                    "stream",
                    "request_id",
                    "verdict",
                    "revision",
                    "reason",
                    "duplicate_of",
                    "topic",
                    "partition",
                    "offset",
                    "occurred_at",
                    "actor",
                ],
                records=[
                    (
                        o.event_id,
                        scope + o.stream,
                        e.request_id,
                        o.verdict.value,
                        o.revision,
                        o.reason,
                        o.duplicate_of or None,
                        p.topic,
                        p.partition,
                        p.offset,
                        e.occurred_at.ToDatetime(tzinfo=UTC),
                        e.actor,
                    )
                    for o, e, p in outcomes
                ],
            )
        changed = {a.envelope.stream for a in accepted}
        if changed:
            heads = [(stream, state.heads[stream]) for stream in sorted(changed)]
            await conn.execute(
                f"INSERT INTO {s}.stream_heads (stream, revision, hash)"
                " SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])"
                " ON CONFLICT (stream) DO UPDATE"
                " SET revision = EXCLUDED.revision, hash = EXCLUDED.hash",
                [scope + stream for stream, _ in heads],
                [head.revision for _, head in heads],
                [head.hash for _, head in heads],
            )
        await conn.execute(
            f"UPDATE {s}.checkpoints SET next_offset = $3, updated_at = now()"
            " WHERE topic = $1 AND partition = $2",
            topic,
            partition,
            next_offset,
        )
        await conn.execute(
            "SELECT pg_notify($1, $2)", progress_channel(schema), f"{partition}:{next_offset}:{topic}"
        )
    return next_offset

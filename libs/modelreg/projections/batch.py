"""Folding one batch of records into a schema, exactly once.

The read-model writes, the outcomes, the stream heads and the checkpoint all
commit in one transaction. The checkpoint row is locked and compared first, so
a zombie projector (one that lost its partition but still runs) cannot commit:
its expected offset no longer matches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable

import asyncpg
import structlog

from modelreg.eventlog import FoldState, Outcome, Position, StreamHead, Verdict, decode
from modelreg.eventlog.envelope import UndecodableRecord, occurred_at
from modelreg.eventlog.integrity import LogIntegrity, screen
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.observability.metrics import QUARANTINED_EVENTS, REJECTED_RECORDS
from modelreg.projections.schema import progress_channel, quote_schema

log = structlog.get_logger(__name__)


class Record(NamedTuple):
    """A record as read from the log; what a projector needs of an aiokafka ConsumerRecord.
    A named tuple, as the fold's other per-event values are (a frozen dataclass's __init__
    costs twice as much)."""

    offset: int
    value: bytes | None


class AcceptedEvent(NamedTuple):
    # A named tuple, as Position and Outcome are: one per accepted event of a replay.
    envelope: Envelope
    revision: int
    position: Position
    occurred_at: datetime
    """The envelope's occurred_at as an aware datetime (eventlog.envelope.occurred_at), read
    once per event: the outcome row and the handler's rows both store it."""


class ProjectionHandler(Protocol):
    """A service's read model: its tables and how accepted events change them.

    The members are read-only, so a handler declares them as plain class attributes.
    """

    @property
    def name(self) -> str: ...

    @property
    def read_model_tables(self) -> Sequence[str]:
        """Tables this projection alone writes, in dependency order; used for digests and resets."""
        ...

    @property
    def stream_scope(self) -> str:
        """The prefix under which this topic's streams are kept in the schema's shared
        bookkeeping (stream_heads, event_outcomes); "" for the service's own fold.

        A reference cache folds another service's topic into this schema, and that
        topic uses the same stream names (the model). Without a scope its heads would
        mix with the own topic's, and each fold would judge events by the other's
        revisions. So a reference-cache handler sets one (e.g. "catalog:").
        """
        ...

    def ddl(self, schema: str) -> str: ...

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        """Writes the effect of accepted events, in log order, inside the caller's transaction."""


class RebuildingHandler(ProjectionHandler, Protocol):
    """A handler that keeps memory of what it wrote, for the sole writer of a fresh schema."""

    def settle(self, committed: bool) -> None:
        """Whether what the apply calls since the last settle wrote was committed or rolled back."""


@runtime_checkable
class Rebuildable(Protocol):
    """A handler with a variant for rebuilds (replay.fold_topic's fresh folds): one that may
    remember across batches what it wrote, since no other writer can change its tables."""

    def for_rebuild(self) -> RebuildingHandler: ...


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


@dataclass(frozen=True, slots=True)
class _Locked:
    stored_offset: int | None
    state: FoldState


async def lock_and_load(
    conn: asyncpg.Connection,
    schema: str,
    topic: str,
    partition: int,
    envelopes: Sequence[Envelope],
    scope: str = "",
) -> _Locked:
    """Locks the partition's checkpoint and reads the slice of fold memory this batch
    can touch, in one round trip (DESIGN.md: one round trip per projector transaction
    was 3x faster than seven).

    Reading in the same statement as the lock is safe: the statement's snapshot
    predates the lock, but a projector that committed while this one waited has
    moved the checkpoint, and the locked row shows its new offset, so this batch
    is fenced rather than folded on stale heads.
    """
    # A stream, request_id or actor holding a NUL cannot be a text parameter; such an event
    # is quarantined unjudged, but its event id (a UUID, screened) is still looked up, so a
    # later copy of it is known and not given a second outcome row.
    storable = [e for e in envelopes if not _unstorable_bookkeeping(e)]
    requested = [(scope + e.stream, e.request_id) for e in storable if e.request_id]
    stored_offset, heads, known, accepted = await conn.fetchrow(
        _lock_and_load_sql(schema),
        topic,
        partition,
        list({scope + e.stream for e in storable}),
        [e.event_id for e in envelopes],
        [stream for stream, _ in requested],
        [request for _, request in requested],
    )
    cut = len(scope)
    state = FoldState()
    for stream, revision, hash_ in heads:
        state.heads[stream[cut:]] = StreamHead(revision, bytes(hash_))
    state.known_event_ids.update(known)
    for stream, request_id, event_id in accepted:
        state.accepted_requests[(stream[cut:], request_id)] = event_id
    return _Locked(stored_offset, state)


def _lock_and_load_sql(schema: str) -> str:
    """$1 topic, $2 partition: the checkpoint row locked. $3 the streams: their heads.
    $4 the event ids: those already judged. $5/$6 (stream, request_id) pairs: the
    events already accepted for them."""
    s = quote_schema(schema)
    return (
        f"SELECT (SELECT next_offset FROM {s}.checkpoints WHERE topic = $1 AND partition = $2 FOR UPDATE),"
        f" ARRAY(SELECT (stream, revision, hash) FROM {s}.stream_heads WHERE stream = ANY($3::text[])),"
        f" ARRAY(SELECT event_id::text FROM {s}.event_outcomes WHERE event_id = ANY($4::uuid[])),"
        f" ARRAY(SELECT (o.stream, o.request_id, o.event_id::text) FROM {s}.event_outcomes o"
        " JOIN unnest($5::text[], $6::text[]) AS r(stream, request_id)"
        " ON o.stream = r.stream AND o.request_id = r.request_id WHERE o.verdict = 'accepted')"
    )


RejectedRow = tuple[str, int, int, str, str, str, str, str, str]
"""A row of rejected_records: topic, partition, offset, event_id, stream, event_type, actor,
signing_key_id, reason (text as the record has it, made storable)."""


def _screen_records(
    topic: str, partition: int, records: Sequence[Record], integrity: LogIntegrity
) -> tuple[list[tuple[Envelope, Position]], list[RejectedRow]]:
    """The records the fold rule may judge, and the rows of those that can never count.

    Screening needs nothing but the record and its partition, so it runs before the
    batch's transaction (and before the fold memory is loaded for the batch's event ids,
    which a forged record could make unreadable) and decides the same in every fold.
    """
    envelopes: list[tuple[Envelope, Position]] = []
    rejected: list[RejectedRow] = []
    for record in records:
        try:
            envelope = decode(record.value)
        except UndecodableRecord as exc:
            # Not an event, so it can never count; recorded, and the fold stays total.
            reason = _storable(f"undecodable: {exc}")
            rejected.append((topic, partition, record.offset, "", "", "", "", "", reason))
            continue
        reason = screen(envelope, partition, integrity)
        if reason:
            rejected.append(
                (
                    topic,
                    partition,
                    record.offset,
                    _storable(envelope.event_id),
                    _storable(envelope.stream),
                    _storable(envelope.type),
                    _storable(envelope.actor),
                    _storable(envelope.signing_key_id),
                    _storable(reason),
                )
            )
        else:
            envelopes.append((envelope, Position(topic, partition, record.offset)))
    return envelopes, rejected


OutcomeRow = tuple[str, str, str, str, int, str, str | None, int, datetime, str, str, int]
"""A row of event_outcomes as a batch writes it, in the order of _OUTCOME_COLUMNS: event_id,
stream, request_id, verdict, revision, reason, duplicate_of, offset, occurred_at, actor, and
the batch's topic and partition (which the write statement takes once, as parameters). A
plain tuple: a NamedTuple built per row cost replay about 0.25 us an event, 1-2 % of its
budget."""

HeadRow = tuple[str, int, bytes]
"""A row of stream_heads: stream, revision, hash."""


def _outcome_rows(judged: Sequence[Judged], scope: str, topic: str, partition: int) -> list[OutcomeRow]:
    quarantined = Verdict.QUARANTINED
    return [
        (
            o.event_id,
            scope + o.stream,
            e.request_id if o.verdict is not quarantined else "",
            # The member itself: a StrEnum is its value (Enum.value is a property, 0.1 us).
            o.verdict,
            o.revision,
            o.reason,
            o.duplicate_of or None,
            p.offset,
            at,
            e.actor if o.verdict is not quarantined else _storable(e.actor),
            topic,
            partition,
        )
        for o, e, p, at in judged
    ]


def _head_rows(state: FoldState, accepted: Sequence[AcceptedEvent], scope: str) -> list[HeadRow]:
    """The new heads of the streams that accepted an event, in stream order."""
    heads = [(stream, state.heads[stream]) for stream in sorted({a.envelope.stream for a in accepted})]
    return [(scope + stream, head.revision, head.hash) for stream, head in heads]


@dataclass(frozen=True, slots=True)
class _Progress:
    """What the batch's one write statement records: outcomes, heads, the checkpoint, the NOTIFY."""

    outcomes: Sequence[OutcomeRow]
    heads: Sequence[HeadRow]
    topic: str
    partition: int
    next_offset: int
    channel: str

    def arguments(self) -> list[object]:
        """The statement's parameters, in the order `_record_progress_sql` numbers them."""
        return [
            self.topic,
            self.partition,
            self.next_offset,
            self.channel,
            f"{self.partition}:{self.next_offset}:{self.topic}",
            # Not the rows' last two columns, the batch's topic and partition: $1 and $2.
            *_columns(self.outcomes, width=12)[:10],
            *_columns(self.heads, width=3),
        ]


def _columns(rows: Sequence[tuple[object, ...]], *, width: int) -> list[list[object]]:
    """Rows to one array per column, for `unnest`."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def apply_batch(
    conn: asyncpg.Connection,
    *,
    schema: str,
    handler: ProjectionHandler,
    topic: str,
    partition: int,
    expected_next_offset: int,
    records: Sequence[Record],
    integrity: LogIntegrity,
    memory: FoldState | None = None,
    verdicts: dict[str, Outcome] | None = None,
    settle: Callable[[bool], None] | None = None,
) -> int:
    """Folds `records` (consecutive, from one partition) and returns the new checkpoint.

    Each record is screened first (eventlog/integrity.py: signature by a trusted key, hash,
    partition); one that fails is recorded in rejected_records and changes nothing else.

    `verdicts`, when given, receives the outcome of each event judged, by event id,
    once the transaction has committed.

    Three round trips besides the handler's own: BEGIN, lock-and-load, and one
    statement that writes outcomes, heads and the checkpoint and notifies.

    If PostgreSQL refuses an event's data (`REFUSED_DATA`: a deterministic refusal,
    not an outage), the batch is folded again in a new transaction, isolating the
    refused events by bisection; they are quarantined and the partition moves on.

    `memory` is for the sole writer of a fresh schema (a rebuild from offset 0): the whole
    fold memory of this partition, kept across batches, so no batch reads it back (the
    lock-and-load, and its checkpoint fence, are skipped: no other writer can exist).
    The verdicts are the same, as the memory holds exactly what the tables would answer.
    `settle`, with it, hears whether each fold's transaction committed (a RebuildingHandler's).
    """
    records = [r for r in records if r.offset >= expected_next_offset]
    if not records:
        return expected_next_offset
    envelopes, rejected = _screen_records(topic, partition, records, integrity)
    batch = _Batch(schema, handler, topic, partition, expected_next_offset, records[-1].offset + 1)
    settle = settle or _nothing_to_settle
    try:
        try:
            folded = await batch.fold(conn, envelopes, rejected, isolate=False, memory=memory)
        except REFUSED_DATA as exc:
            settle(False)
            log.warning(
                "projector_batch_refused", projection=handler.name, partition=partition, error=str(exc)
            )
            # The failed attempt changed `memory`: the rolled-back tables hold the state before
            # the batch, so the isolating fold loads its slice from them, and `memory` takes
            # the slice's outcome for every key the batch touched.
            folded = await batch.fold(conn, envelopes, rejected, isolate=True)
            if memory is not None:
                _merge_slice(memory, folded.state, [e for e, _ in envelopes])
    except BaseException:
        settle(False)
        raise
    settle(True)
    for row in rejected:
        REJECTED_RECORDS.labels(handler.name, topic).inc()
        log.warning(
            "record_rejected",
            projection=handler.name,
            topic=topic,
            partition=partition,
            offset=row[2],
            event_id=row[3],
            signing_key_id=row[7],
            reason=row[8],
        )
    if verdicts is not None:
        verdicts.update((j[0].event_id, j[0]) for j in folded.judged)
    return batch.next_offset


def _nothing_to_settle(committed: bool) -> None:
    pass


REFUSED_DATA: tuple[type[Exception], ...] = (
    asyncpg.DataError,  # class 22: NUL or untranslatable characters, numbers out of range, truncation
    asyncpg.CheckViolationError,
    asyncpg.NotNullViolationError,
)
"""Errors with which PostgreSQL refuses an event's data itself. Folding the same events
again gives the same error, so retrying would wedge the partition for good. Connection
loss, a shutdown or a deadlock are not here: they pass, and the batch is retried."""

Judged = tuple[Outcome, Envelope, Position, datetime]
"""An event's verdict, with the event, where it was found and when it occurred."""

COPY_OUTCOMES_FROM = 64
"""Outcomes in a rebuild's batch from which COPY pays for its extra round trips."""

_OUTCOME_TYPES = {
    "event_id": "uuid",
    "stream": "text",
    "request_id": "text",
    "verdict": "text",
    "revision": "bigint",
    "reason": "text",
    "duplicate_of": "uuid",
    "offset": "bigint",
    "occurred_at": "timestamptz",
    "actor": "text",
    "topic": "text",
    "partition": "int",
}
"""event_outcomes' columns and their types, in an OutcomeRow's order: a rebuild COPYs the
rows as they are, and the write statement unnests all but the last two (the batch's)."""

_OUTCOME_COLUMNS = list(_OUTCOME_TYPES)


@dataclass(frozen=True, slots=True)
class _Folded:
    judged: list[Judged]
    state: FoldState
    """The fold memory the batch was judged on, as the batch left it."""


def _merge_slice(memory: FoldState, folded: FoldState, envelopes: Sequence[Envelope]) -> None:
    """`memory` takes `folded`'s (a slice loaded for `envelopes`, then judged) heads and
    accepted requests for every stream and request of `envelopes`, and its event ids."""
    for stream in {e.stream for e in envelopes}:
        if stream in folded.heads:
            memory.heads[stream] = folded.heads[stream]
        else:
            memory.heads.pop(stream, None)
    for key in {(e.stream, e.request_id) for e in envelopes if e.request_id}:
        if key in folded.accepted_requests:
            memory.accepted_requests[key] = folded.accepted_requests[key]
        else:
            memory.accepted_requests.pop(key, None)
    memory.known_event_ids |= folded.known_event_ids


@dataclass(frozen=True, slots=True)
class _Batch:
    schema: str
    handler: ProjectionHandler
    topic: str
    partition: int
    expected_next_offset: int
    next_offset: int

    async def fold(
        self,
        conn: asyncpg.Connection,
        envelopes: Sequence[tuple[Envelope, Position]],
        rejected: Sequence[RejectedRow],
        *,
        isolate: bool,
        memory: FoldState | None = None,
    ) -> _Folded:
        scope = self.handler.stream_scope
        async with conn.transaction():
            if memory is not None and not isolate:
                state = memory
            else:
                locked = await lock_and_load(
                    conn, self.schema, self.topic, self.partition, [e for e, _ in envelopes], scope
                )
                if locked.stored_offset != self.expected_next_offset:
                    stored = locked.stored_offset
                    raise Fenced(
                        self.topic,
                        self.partition,
                        stored if stored is not None else -1,
                        self.expected_next_offset,
                    )
                state = locked.state
            # Isolating applies the accepted events itself, in savepoints.
            judged = await self._isolate(conn, state, envelopes) if isolate else _judge(state, envelopes)
            accepted = _accepted(judged)
            if accepted and not isolate:
                await self.handler.apply(conn, self.schema, accepted)
            quarantined = [j for j in judged if j[0].verdict is Verdict.QUARANTINED]
            outcomes = _outcome_rows(judged, scope, self.topic, self.partition)
            if memory is not None and len(outcomes) >= COPY_OUTCOMES_FROM:
                # A rebuild's batches are large: COPY costs two more round trips but a
                # fraction of the CPU of the statement's ten arrays (asyncpg checks every
                # element of an array parameter; PostgreSQL unnests them).
                await conn.copy_records_to_table(
                    "event_outcomes",
                    schema_name=self.schema,
                    columns=_OUTCOME_COLUMNS,
                    records=outcomes,
                )
                outcomes = []
            progress = _Progress(
                outcomes=outcomes,
                heads=_head_rows(state, accepted, scope),
                topic=self.topic,
                partition=self.partition,
                next_offset=self.next_offset,
                channel=progress_channel(self.schema),
            )
            await conn.execute(_record_progress_sql(self.schema), *progress.arguments())
            if quarantined:
                await conn.executemany(
                    _quarantine_sql(self.schema),
                    [_quarantine_row(o, e, p, at) for o, e, p, at in quarantined],
                )
            if rejected:
                await conn.executemany(_rejected_sql(self.schema), rejected)
        for outcome, envelope, position, _ in quarantined:
            QUARANTINED_EVENTS.labels(self.handler.name, self.topic).inc()
            log.error(
                "event_quarantined",
                projection=self.handler.name,
                topic=position.topic,
                partition=position.partition,
                offset=position.offset,
                event_id=outcome.event_id,
                stream=_storable(envelope.stream),
                error=outcome.reason,
            )
        return _Folded(judged, state)

    async def _isolate(
        self, conn: asyncpg.Connection, state: FoldState, envelopes: Sequence[tuple[Envelope, Position]]
    ) -> list[Judged]:
        """Judges and applies `envelopes` in halves, each in a savepoint, down to the single
        events PostgreSQL refuses: those are quarantined.

        A quarantined event counts as never accepted: the stream head stays where it was,
        so the stream's next event (decided on the read model, which never saw it) is judged
        against the head it was decided on, and the events after it in the batch are judged
        again without it. The verdicts are those of applying the log one event at a time,
        whatever the batch boundaries, so a replay quarantines the same events.
        """
        before = _copy(state)
        judged = _judge(state, envelopes)
        accepted = _accepted(judged)
        if not accepted:
            return judged
        try:
            async with conn.transaction():
                await self.handler.apply(conn, self.schema, accepted)
            return judged
        except REFUSED_DATA as exc:
            _restore(state, before)
            if len(envelopes) > 1:
                half = len(envelopes) // 2
                return [
                    *await self._isolate(conn, state, envelopes[:half]),
                    *await self._isolate(conn, state, envelopes[half:]),
                ]
            ((outcome, envelope, position, at),) = judged
            state.known_event_ids.add(outcome.event_id)
            head = state.head(envelope.stream)
            error = _storable(f"{type(exc).__name__}: {exc}")
            return [
                (
                    Outcome(outcome.event_id, outcome.stream, Verdict.QUARANTINED, head.revision, error),
                    envelope,
                    position,
                    at,
                )
            ]


def _judge(state: FoldState, envelopes: Sequence[tuple[Envelope, Position]]) -> list[Judged]:
    judged = []
    for envelope, position in envelopes:
        unstorable = _unstorable_bookkeeping(envelope)
        if unstorable and envelope.event_id not in state.known_event_ids:
            # Its outcome row could not be written: quarantined before it is judged.
            state.known_event_ids.add(envelope.event_id)
            outcome = Outcome(
                envelope.event_id,
                _storable(envelope.stream),
                Verdict.QUARANTINED,
                state.head(envelope.stream).revision,
                f"{unstorable} holds a NUL character",
            )
            judged.append((outcome, envelope, position, occurred_at(envelope)))
        elif (outcome_ := state.decide(envelope)) is not None:
            judged.append((outcome_, envelope, position, occurred_at(envelope)))
    return judged


def _accepted(judged: Sequence[Judged]) -> list[AcceptedEvent]:
    accepted = Verdict.ACCEPTED
    return [AcceptedEvent(e, o.revision, p, at) for o, e, p, at in judged if o.verdict is accepted]


def _copy(state: FoldState) -> FoldState:
    return FoldState(dict(state.heads), set(state.known_event_ids), dict(state.accepted_requests))


def _restore(state: FoldState, saved: FoldState) -> None:
    state.heads = dict(saved.heads)
    state.known_event_ids = set(saved.known_event_ids)
    state.accepted_requests = dict(saved.accepted_requests)


def _unstorable_bookkeeping(envelope: Envelope) -> str:
    """The envelope field the bookkeeping tables store as text that PostgreSQL cannot hold."""
    # Spelled out rather than a loop over getattr: every event of a replay is checked.
    if "\x00" in envelope.stream:
        return "stream"
    if "\x00" in envelope.request_id:
        return "request_id"
    if "\x00" in envelope.actor:
        return "actor"
    return ""


def _storable(text: str) -> str:
    """`text` as PostgreSQL can store it: a NUL written out."""
    return text.replace("\x00", "\\x00")


def _quarantine_row(
    outcome: Outcome, envelope: Envelope, position: Position, at: datetime
) -> tuple[object, ...]:
    return (
        position.topic,
        position.partition,
        position.offset,
        outcome.event_id,
        _storable(envelope.stream),
        envelope.WhichOneof("payload") or "",
        outcome.reason,
        at,
    )


def _rejected_sql(schema: str) -> str:
    return (
        f"INSERT INTO {quote_schema(schema)}.rejected_records"
        ' (topic, partition, "offset", event_id, stream, event_type, actor, signing_key_id, reason)'
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
    )


def _quarantine_sql(schema: str) -> str:
    return (
        f"INSERT INTO {quote_schema(schema)}.quarantine"
        ' (topic, partition, "offset", event_id, stream, event_type, error, occurred_at)'
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
    )


def _record_progress_sql(schema: str) -> str:
    """Outcomes, stream heads, the checkpoint and the NOTIFY as one statement.

    $1 topic, $2 partition, $3 the new checkpoint, $4/$5 the NOTIFY's channel and
    payload; $6-$15 the OutcomeRow columns but the last two, $16-$18 the HeadRow columns.
    Data-modifying CTEs run whether or not the outer query reads them.
    """
    s = quote_schema(schema)
    per_row = list(_OUTCOME_TYPES.items())[:-2]  # topic and partition are $1 and $2
    columns = ", ".join(f'"{name}"' for name, _ in per_row)
    arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(per_row, start=6))
    return f"""
WITH outcomes AS (
    INSERT INTO {s}.event_outcomes ({columns}, topic, partition)
    SELECT o.*, $1, $2 FROM unnest({arrays}) AS o({columns})
), heads AS (
    INSERT INTO {s}.stream_heads (stream, revision, hash)
    SELECT * FROM unnest($16::text[], $17::bigint[], $18::bytea[])
    ON CONFLICT (stream) DO UPDATE SET revision = EXCLUDED.revision, hash = EXCLUDED.hash
), checkpoint AS (
    UPDATE {s}.checkpoints SET next_offset = $3, updated_at = now()
    WHERE topic = $1 AND partition = $2
)
SELECT pg_notify($4, $5),
       -- A lost commit is re-projected from the log with the same verdict, so derived
       -- state may skip the wait for the WAL flush (SET LOCAL, as a function; read at the
       -- commit, so once, last, for every batch).
       set_config('synchronous_commit', 'off', true)
"""

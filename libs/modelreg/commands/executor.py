"""The command path every service shares.

read the aggregate at revision r -> decide -> append expecting r -> await the
fold's verdict on that very event. The log decides races: on a conflict the
command is decided again on fresh state, a bounded number of times, then
ABORTED. Commands on one stream are queued inside the process, so optimistic
retries only settle races between replicas (DESIGN.md, "Contention").
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic

import asyncpg
import structlog
from google.protobuf.message import Message

from modelreg.commands.contracts import CommandResult, Loaded, LocalVerdict, State
from modelreg.errors import Aborted, ConsistencyTimeout, FailedPrecondition, InvalidArgument, ModelregError
from modelreg.eventlog import (
    ANY_REVISION,
    ConsistencyToken,
    EventContext,
    Position,
    Verdict,
    build_envelope,
)
from modelreg.eventlog.kafka import KafkaEventLog, RecordTooLarge
from modelreg.observability.metrics import COMMAND_ABORTS, COMMAND_CONFLICTS
from modelreg.projections.progress import ProgressListener
from modelreg.projections.schema import quote_schema

log = structlog.get_logger(__name__)

LocalFold = Callable[[Position, bytes, str], Awaitable[LocalVerdict]]
"""Folds a record this process has just appended (Projector.fold_appended)."""


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    event_id: str
    verdict: Verdict
    revision: int
    position: Position
    duplicate_of: str | None


class OutcomeStore:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        s = quote_schema(schema)
        self._columns = (
            f'SELECT event_id::text, verdict, revision, topic, partition, "offset", '
            f"duplicate_of::text FROM {s}.event_outcomes"
        )
        self._rejected_sql = (
            f'SELECT reason FROM {s}.rejected_records WHERE topic = $1 AND partition = $2 AND "offset" = $3'
        )
        self._abort_sql = (
            f'INSERT INTO {s}.command_aborts (topic, partition, "offset", stream, request_id, attempts)'
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
        )

    async def by_event(self, event_id: str) -> StoredOutcome | None:
        row = await self._pool.fetchrow(f"{self._columns} WHERE event_id = $1::uuid", event_id)
        return _outcome(row)

    async def accepted_request(self, stream: str, request_id: str) -> StoredOutcome | None:
        row = await self._pool.fetchrow(
            f"{self._columns} WHERE stream = $1 AND request_id = $2 AND verdict = 'accepted'",
            stream,
            request_id,
        )
        return _outcome(row)

    async def rejection(self, position: Position) -> str | None:
        """Why the fold rejected the record at `position` (rejected_records), if it did."""
        return await self._pool.fetchval(
            self._rejected_sql, position.topic, position.partition, position.offset
        )

    async def record_abort(self, position: Position, stream: str, request_id: str, attempts: int) -> None:
        """Keeps the abort where `ops status` counts it, per partition. Best effort: a database
        that cannot take it must not turn the caller's ABORTED into another error."""
        try:
            await self._pool.execute(
                self._abort_sql,
                position.topic,
                position.partition,
                position.offset,
                stream,
                request_id,
                attempts,
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
            log.warning("command_abort_not_recorded", stream=stream, position=str(position), error=str(error))


def _outcome(row: asyncpg.Record | None) -> StoredOutcome | None:
    if row is None:
        return None
    return StoredOutcome(
        row["event_id"],
        Verdict(row["verdict"]),
        row["revision"],
        Position(row["topic"], row["partition"], row["offset"]),
        row["duplicate_of"],
    )


@dataclass(frozen=True, slots=True)
class Command(Generic[State]):
    """One intent against one stream; `decide` raises a domain error or returns the event."""

    stream: str
    context: EventContext
    load: Callable[[str], Awaitable[Loaded[State]]]
    decide: Callable[[State], tuple[str, Message]]
    """Returns (envelope payload field, payload message)."""
    append_only: bool = False
    """Append at ANY revision: for facts whose validity does not depend on the state."""


class CommandExecutor:
    def __init__(
        self,
        *,
        log: KafkaEventLog,
        outcomes: OutcomeStore,
        progress: ProgressListener,
        topic: str,
        source: str,
        max_attempts: int = 10,
        verdict_timeout_s: float = 10.0,
        local_fold: LocalFold | None = None,
    ) -> None:
        self._log = log
        self._outcomes = outcomes
        self._progress = progress
        self._topic = topic
        self._source = source
        self._max_attempts = max_attempts
        self._verdict_timeout_s = verdict_timeout_s
        self._local_fold = local_fold
        self._stream_locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        self.conflicts = 0

    async def original(self, stream: str, context: EventContext) -> CommandResult | None:
        """The result of this request_id on the stream, if it was already carried out."""
        if not context.request_id:
            return None
        original = await self._outcomes.accepted_request(stream, context.request_id)
        return None if original is None else self._result(original, replayed=True)

    async def execute(self, command: Command[State]) -> CommandResult:
        # The request_id is looked up inside the stream's lock: a retry queued behind its
        # original in this process then finds the original's outcome. A retry racing it on
        # another replica appends too, and the fold's request_id rule makes that a duplicate.
        async with self._stream_lock(command.stream):
            done = await self.original(command.stream, command.context)
            if done is not None:
                return done
            last: Position | None = None
            for attempt in range(self._max_attempts):
                loaded = await command.load(command.stream)
                try:
                    payload_field, payload = command.decide(loaded.state)
                except ModelregError:
                    # The state may hold this very request, applied (by another replica)
                    # since the lookup above: then the answer is the original's.
                    done = await self.original(command.stream, command.context)
                    if done is not None:
                        return done
                    raise
                envelope = build_envelope(
                    stream=command.stream,
                    payload_field=payload_field,
                    payload=payload,
                    expected_revision=ANY_REVISION if command.append_only else loaded.head.revision,
                    prev_hash=loaded.head.hash,
                    source=self._source,
                    context=command.context,
                )
                try:
                    position, value = await self._log.append_record(self._topic, envelope)
                except RecordTooLarge as exc:  # refused before the producer: nothing appended
                    raise InvalidArgument.of("request", f"is too large for the log: {exc}") from None
                last = position
                outcome = await self._verdict(envelope.event_id, position, value)
                if outcome.verdict is Verdict.ACCEPTED:
                    return self._result(outcome, replayed=False)
                if outcome.verdict is Verdict.QUARANTINED:
                    # Deciding again would append the same unstorable event again.
                    raise InvalidArgument.of("request", "the registry could not store this change")
                if outcome.verdict is Verdict.DUPLICATE and outcome.duplicate_of:
                    original = await self._outcomes.by_event(outcome.duplicate_of)
                    if original is not None:
                        return self._result(original, replayed=True)
                self.conflicts += 1
                COMMAND_CONFLICTS.labels(self._topic).inc()
                await asyncio.sleep(random.uniform(0, min(0.005 * 2**attempt, 0.2)))
            COMMAND_ABORTS.labels(self._topic).inc()
            if last is not None:
                await self._outcomes.record_abort(
                    last, command.stream, command.context.request_id, self._max_attempts
                )
        raise Aborted(
            f"{command.stream} kept changing concurrently; gave up after "
            f"{self._max_attempts} attempts, retry the request"
        )

    async def _verdict(self, event_id: str, position: Position, value: bytes) -> StoredOutcome:
        if self._local_fold is not None:
            local = await self._local_fold(position, value, event_id)
            if local.folded:
                # Reads carrying this command's token need not wait for the NOTIFY.
                self._progress.advance(position.topic, position.partition, position.offset + 1)
                if local.outcome is not None:
                    o = local.outcome
                    return StoredOutcome(o.event_id, o.verdict, o.revision, position, o.duplicate_of or None)
                return await self._stored_outcome(event_id, position)
        token = ConsistencyToken.after([position])
        if not await self._progress.wait_for(token.required, self._verdict_timeout_s):
            raise ConsistencyTimeout(
                f"the event was recorded at {position.topic}[{position.partition}]@"
                f"{position.offset} but not projected within {self._verdict_timeout_s:g}s; "
                "retry with the same request_id to learn its outcome"
            )
        return await self._stored_outcome(event_id, position)

    async def _stored_outcome(self, event_id: str, position: Position) -> StoredOutcome:
        outcome = await self._outcomes.by_event(event_id)
        if outcome is None:
            reason = await self._outcomes.rejection(position)
            if reason is not None:
                # A REJECTED record has no outcome, by event id (nothing vouches for it): this
                # service's own record failed its fold's integrity check, so the fault is in its
                # configuration, and a retry cannot succeed until an operator fixes it.
                at = f"{position.topic}[{position.partition}]@{position.offset}"
                log.error("own_record_rejected", position=at, event_id=event_id, reason=reason)
                raise FailedPrecondition(
                    f"the registry rejected this service's own record at {at} ({reason});"
                    " nothing was changed. Its signing key (MODELREG_SIGNING_KEY) is not one the folds"
                    " trust (MODELREG_TRUSTED_KEYS): retry once an operator has fixed the keys"
                )
            raise RuntimeError(f"projected past {position} without an outcome for {event_id}")
        return outcome

    def _result(self, outcome: StoredOutcome, *, replayed: bool) -> CommandResult:
        return CommandResult(
            outcome.event_id, outcome.revision, ConsistencyToken.after([outcome.position]), replayed
        )

    def _stream_lock(self, stream: str) -> _StreamLock:
        return _StreamLock(self, stream)


class _StreamLock:
    """An asyncio.Lock per stream, dropped when nobody holds or waits for it."""

    def __init__(self, executor: CommandExecutor, stream: str) -> None:
        self._executor = executor
        self._stream = stream

    async def __aenter__(self) -> None:
        e = self._executor
        lock = e._stream_locks.setdefault(self._stream, asyncio.Lock())
        e._lock_users[self._stream] = e._lock_users.get(self._stream, 0) + 1
        await lock.acquire()

    async def __aexit__(self, *_: object) -> None:
        e = self._executor
        e._stream_locks[self._stream].release()
        e._lock_users[self._stream] -= 1
        if e._lock_users[self._stream] == 0:
            del e._lock_users[self._stream]
            del e._stream_locks[self._stream]

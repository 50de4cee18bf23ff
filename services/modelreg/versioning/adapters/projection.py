"""The fold of `modelreg.versioning.v1` into model_versions and retention_policies.

It folds through the domain's own `evolve`, so a command and the read model
share one definition of every state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import asyncpg
import structlog

from modelreg.errors import InvalidArgument
from modelreg.eventmeta import EventMeta
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import quote_schema
from modelreg.versioning.adapters import codec
from modelreg.versioning.adapters.schema import (
    HISTORY_COLUMNS,
    VERSION_COLUMNS,
    spec_json_of_message,
    spec_to_json,
    version_from_row,
    versioning_tables,
)
from modelreg.versioning.domain.events import Event, VersionCreated
from modelreg.versioning.domain.evolve import can_evolve, evolve
from modelreg.versioning.domain.state import ModelVersion, ModelVersions
from modelreg.versioning.domain.values import SemVer, Status, VersionSpec
from modelreg.versioning.resources import spec_from_proto

log = structlog.get_logger(__name__)

_PENDING_UPLOAD = Status.PENDING_UPLOAD.value

COPY_THRESHOLD = 64
"""Changed versions in one batch from which COPY pays for its extra round trips."""

_FULL_COLUMNS = ", ".join(f"v.{c.strip()}" for c in VERSION_COLUMNS.split(","))
_SUMMARY_COLUMNS = ", ".join(
    "NULL::jsonb AS spec" if column == "spec" else f"v.{column}"
    for column in (c.strip() for c in VERSION_COLUMNS.split(","))
)


class VersioningProjection:
    """Folds `modelreg.versioning.v1` into model_versions and retention_policies."""

    name = "versioning"
    read_model_tables = ("model_versions", "model_version_history", "retention_policies")
    stream_scope = ""

    def __init__(self, written: _Written | None = None, *, compact_specs: bool = True) -> None:
        """`compact_specs`: store specs in the compact form (schema.spec_to_json); false
        during a rolling upgrade from a release whose readers need the full form."""
        self._written = written
        self.compact_specs = compact_specs

    def ddl(self, schema: str) -> str:
        return versioning_tables(schema)

    def for_rebuild(self) -> VersioningProjection:
        """The handler of a fresh schema's sole writer (a rebuild from offset 0): it keeps the
        number and semver of every version it has written, so a batch reads back only the
        stored versions its events change; whether a created number or semver is taken, it
        knows without asking. Probing the tables for every creation of a replay cost
        PostgreSQL 4-5 us an event and the worker 3-4 (bench/RESULTS.md)."""
        return VersioningProjection(_Written(), compact_specs=self.compact_specs)

    def settle(self, committed: bool) -> None:
        if self._written is not None:
            self._written.settle(committed)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        decoded = [(a, _decode(a)) for a in events]
        streams = list({a.envelope.stream for a, e in decoded if e is not None})
        if not streams:
            return
        states = {m: ModelVersions(m) for m in streams}
        # One read, of the rows this batch can touch: full rows for the versions it names,
        # and of the others only those holding a semver it creates (can_evolve() needs their
        # number and semver, not their spec). So a batch costs the same whatever a model's
        # history; only changed versions are written back. Retention policies are not read:
        # the fold only ever writes the one a RetentionSet carries.
        written, compact = self._written, self.compact_specs
        created: list[tuple[str, SemVer]] = []
        if written is None:
            touched = {
                (a.envelope.stream, e.number) for a, e in decoded if e is not None and hasattr(e, "number")
            }
            created = [(a.envelope.stream, e.semver) for a, e in decoded if isinstance(e, _Creation)]
        else:
            # Only stored versions are read back, and only those a change names (whether a
            # created number or semver is taken, `written` knows).
            touched = set()
            for a, e in decoded:
                if e is not None and not isinstance(e, _Creation) and hasattr(e, "number"):
                    stream = a.envelope.stream
                    if e.number in written.numbers.get(stream, ()):
                        touched.add((stream, e.number))
        stored: set[tuple[str, int]] = set()
        rows = []
        if touched or created:
            rows = await conn.fetch(
                f"SELECT {_SUMMARY_COLUMNS}, false AS touched FROM {s}.model_versions v"
                " JOIN unnest($3::text[], $4::int[], $5::int[], $6::int[])"
                "  AS c(model, major, minor, pipeline)"
                "  USING (model, major, minor, pipeline)"
                f" UNION ALL SELECT {_FULL_COLUMNS}, true FROM {s}.model_versions v"
                " JOIN unnest($1::text[], $2::bigint[]) AS t(model, number) USING (model, number)",
                [m for m, _ in touched],
                [n for _, n in touched],
                [m for m, _ in created],
                [v.major for _, v in created],
                [v.minor for _, v in created],
                [v.pipeline for _, v in created],
            )
        # Summaries first, so a row that both holds a created semver and is named ends up full.
        for row in sorted(rows, key=lambda r: r["touched"]):
            stored.add((row["model"], row["number"]))
            version = version_from_row(row) if row["touched"] else _summary(row)
            states[row["model"]].versions[row["number"]] = version
        changed: dict[tuple[str, int], ModelVersion] = {}
        # Creations not yet evolved, by stream and number, and the semvers they take: most
        # created versions change no more in their batch, so their rows are written straight
        # from the event (_Creation.row); one the batch changes again is evolved first.
        creations: dict[str, dict[int, _Creation]] = {m: {} for m in streams}
        created_semvers: dict[str, set[SemVer]] = {m: set() for m in streams}
        history: list[tuple[object, ...]] = []
        policies: dict[str, int] = {}
        for accepted, event in decoded:
            if event is None:
                continue
            stream = accepted.envelope.stream
            pending = creations[stream]
            if isinstance(event, _Creation):
                # can_evolve's rule for a VersionCreated, over the state and the pending creations.
                semver = event.semver
                if (
                    event.number >= 1
                    and event.number not in states[stream].versions
                    and event.number not in pending
                    and semver not in created_semvers[stream]
                    and not states[stream].taken(semver)
                    and (written is None or not written.holds(stream, event.number, semver))
                ):
                    pending[event.number] = event
                    created_semvers[stream].add(semver)
                else:
                    _skipped(accepted)
                continue
            number = getattr(event, "number", None)
            if number in pending:
                creation = pending.pop(number)
                states[stream] = evolve(states[stream], creation.event(), creation.meta())
            if not can_evolve(states[stream], event):
                _skipped(accepted)
                continue
            meta = _meta(accepted)
            if number is not None:
                # The state this event ends goes to the history, with the event's revision; so a
                # replay of creations writes none, and each change one row.
                history.append((*_version_row(states[stream].versions[number], compact), accepted.revision))
            state = states[stream] = evolve(states[stream], event, meta)
            if number is None:
                policies[stream] = state.keep_last_per_major
            else:
                changed[(stream, number)] = state.versions[number]
        rows = [_version_row(v, compact) for v in changed.values()]
        keys = list(changed)
        for stream, pending in creations.items():
            rows.extend(c.row(compact) for c in pending.values())
            keys.extend((stream, number) for number in pending)
        if rows:
            # COPY is fastest for the many new rows of a replay (DESIGN.md), but costs
            # three round trips; a live batch of a few events is one pipelined upsert.
            bulk = len(rows) >= COPY_THRESHOLD
            if not bulk:
                fresh, upserted = [], rows
            elif not stored:  # a rebuild's usual batch: every row is new
                fresh, upserted = rows, []
            else:
                fresh = [r for r, key in zip(rows, keys, strict=True) if key not in stored]
                upserted = [r for r, key in zip(rows, keys, strict=True) if key in stored]
            if fresh:
                await conn.copy_records_to_table(
                    "model_versions",
                    schema_name=schema,
                    columns=[c.strip() for c in VERSION_COLUMNS.split(",")],
                    records=fresh,
                )
            if upserted:
                await conn.executemany(
                    f"INSERT INTO {s}.model_versions ({VERSION_COLUMNS})"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14)"
                    " ON CONFLICT (model, number) DO UPDATE SET status = EXCLUDED.status,"
                    " spec = EXCLUDED.spec, update_time = EXCLUDED.update_time,"
                    " updated_by = EXCLUDED.updated_by, state_reason = EXCLUDED.state_reason",
                    upserted,
                )
        if len(history) >= COPY_THRESHOLD:
            await conn.copy_records_to_table(
                "model_version_history",
                schema_name=schema,
                columns=[c.strip() for c in HISTORY_COLUMNS.split(",")],
                records=history,
            )
        elif history:
            await conn.executemany(
                f"INSERT INTO {s}.model_version_history ({HISTORY_COLUMNS}) VALUES"
                " ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15)",
                history,
            )
        if policies:
            await conn.executemany(
                f"INSERT INTO {s}.retention_policies (model, keep_last_per_major) VALUES ($1, $2)"
                " ON CONFLICT (model) DO UPDATE SET keep_last_per_major = EXCLUDED.keep_last_per_major",
                list(policies.items()),
            )
        if written is not None:
            # Last: an apply that raised (a refused row) must have added nothing.
            written.add(
                [(v.model, v.number, v.semver) for v in changed.values()]
                + [(m, c.number, c.semver) for m, pending in creations.items() for c in pending.values()]
            )


class _Written:
    """By model, the numbers and semvers of the versions a rebuild's writer has written.

    What the batch in progress wrote counts at once (the batch's later apply calls, when it
    is folded again in isolation, run in the same transaction), and is forgotten again if
    its transaction rolls back: `added` is the undo log since the last settle."""

    def __init__(self) -> None:
        self.numbers: dict[str, set[int]] = {}
        self.semvers: dict[str, set[SemVer]] = {}
        self.added: list[tuple[str, int, SemVer]] = []

    def holds(self, model: str, number: int, semver: SemVer) -> bool:
        """Whether the number or the semver is taken by a version written before this apply."""
        return number in self.numbers.get(model, ()) or semver in self.semvers.get(model, ())

    def add(self, versions: list[tuple[str, int, SemVer]]) -> None:
        for model, number, semver in versions:
            numbers = self.numbers.setdefault(model, set())
            if number not in numbers:
                numbers.add(number)
                self.semvers.setdefault(model, set()).add(semver)
                self.added.append((model, number, semver))

    def settle(self, committed: bool) -> None:
        if not committed:
            for model, number, semver in self.added:
                self.numbers[model].discard(number)
                self.semvers[model].discard(semver)
        self.added.clear()


def _version_row(v: ModelVersion, compact: bool) -> tuple[object, ...]:
    return (
        v.model,
        v.number,
        str(v.semver),
        v.semver.major,
        v.semver.minor,
        v.semver.pipeline,
        v.status.value,
        spec_to_json(v.spec, compact=compact),
        v.create_time,
        v.update_time,
        v.created_by,
        v.updated_by,
        v.state_reason,
        v.created_revision,
    )


def _summary(row: Any) -> ModelVersion:
    """A stand-in carrying only what can_evolve() reads (number and semver); never written back."""
    epoch = datetime.fromtimestamp(0, UTC)
    return ModelVersion(
        row["model"],
        row["number"],
        SemVer(row["major"], row["minor"], row["pipeline"]),
        Status.READY,
        VersionSpec(),
        epoch,
        epoch,
        "",
        "",
    )


def _decode(accepted: AcceptedEvent) -> Event | _Creation | None:
    try:
        if accepted.envelope.WhichOneof("payload") == "model_version_created":
            return _Creation.of(accepted)
        return codec.decode(accepted.envelope)
    except (InvalidArgument, ValueError) as error:
        # A record no version of this service could have written; skipping keeps the fold total.
        log.warning("versioning_event_undecodable", stream=accepted.envelope.stream, error=str(error))
        return None


def _meta(accepted: AcceptedEvent) -> EventMeta:
    envelope = accepted.envelope
    return EventMeta(envelope.stream, accepted.occurred_at, envelope.actor, accepted.revision)


def _skipped(accepted: AcceptedEvent) -> None:
    log.warning("versioning_event_skipped", stream=accepted.envelope.stream, offset=accepted.position.offset)


class _Creation(NamedTuple):
    """A model_version_created event, read only as far as the fold's rule needs (number and
    semver); the domain's VersionCreated when the batch changes the version again, else
    straight the row evolve() would make of it. A named tuple, as the batch's other
    per-event values are."""

    number: int
    semver: SemVer
    accepted: AcceptedEvent

    @classmethod
    def of(cls, accepted: AcceptedEvent) -> _Creation:
        body = accepted.envelope.model_version_created.model_version
        return cls(body.version, codec.semver(body.semver), accepted)

    def event(self) -> VersionCreated:
        body = self.accepted.envelope.model_version_created.model_version
        return VersionCreated(self.number, self.semver, spec_from_proto(body))

    def meta(self) -> EventMeta:
        return _meta(self.accepted)

    def row(self, compact: bool) -> tuple[object, ...]:
        """_version_row(evolve(...).versions[number], compact) of the created version."""
        envelope = self.accepted.envelope
        at, actor, semver = self.accepted.occurred_at, envelope.actor, self.semver
        return (
            envelope.stream,
            self.number,
            str(semver),
            semver.major,
            semver.minor,
            semver.pipeline,
            _PENDING_UPLOAD,
            spec_json_of_message(envelope.model_version_created.model_version, compact=compact),
            at,
            at,
            actor,
            actor,
            "",
            self.accepted.revision,
        )

"""A command reads only the few versions it depends on (issue 13: write cost grew with a model's
history), and decides exactly as it would on the whole aggregate.

Random histories (bumps, explicit semvers on several MAJOR lines, signatures, deletions) are
written to a real versioning schema; every kind of command is then decided on the reader's
partial load and on the full load, and the answers (event or error) must be equal. The
projection's fold, which also reads only what a batch touches, must keep refusing a created
number or semver that is taken.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from modelreg.errors import ModelregError
from modelreg.eventlog import GENESIS_HASH, EventContext, Position, build_envelope
from modelreg.eventlog.envelope import occurred_at
from modelreg.eventmeta import EventMeta
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import bookkeeping_ddl, quote_schema
from modelreg.signatures import Signature, TensorSpec
from modelreg.versioning.adapters import codec
from modelreg.versioning.adapters.projection import VersioningProjection, _version_row
from modelreg.versioning.adapters.reader import PostgresVersionReader
from modelreg.versioning.adapters.schema import VERSION_COLUMNS, versioning_tables
from modelreg.versioning.domain.commands import (
    Command,
    CreateVersion,
    Delete,
    Deprecate,
    Finalize,
    SetRetention,
    UpdateVersion,
)
from modelreg.versioning.domain.decide import decide
from modelreg.versioning.domain.events import (
    Event,
    ManifestDeclared,
    RetentionSet,
    VersionCreated,
    VersionDeleted,
    VersionDeprecated,
    VersionFinalized,
    VersionUpdated,
)
from modelreg.versioning.domain.evolve import can_evolve, evolve
from modelreg.versioning.domain.state import ModelVersions
from modelreg.versioning.domain.values import ArtifactFile, Bump, SemVer, Status, VersionSpec

MODEL = "namespaces/partial/models/m"
SIGNATURES = (
    None,
    Signature(inputs=(TensorSpec("x", "float32", (-1, 4)),)),
    Signature(inputs=(TensorSpec("x", "int64", (-1, 4)),)),
)


@pytest.fixture
async def reader(database: str) -> AsyncIterator[tuple[asyncpg.Pool, PostgresVersionReader, str]]:
    schema = f"partial_{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    await pool.execute(bookkeeping_ddl(schema) + versioning_tables(schema))
    try:
        yield pool, PostgresVersionReader(pool, schema), schema
    finally:
        await pool.execute(f"DROP SCHEMA {quote_schema(schema)} CASCADE")
        await pool.close()


def _accepted(event: Event, revision: int, actor: str = "forger") -> AcceptedEvent:
    """The event as the projection gets it: accepted at `revision`, at offset `revision`."""
    field, payload = codec.encode(MODEL, event)
    envelope = build_envelope(
        stream=MODEL,
        payload_field=field,
        payload=payload,
        expected_revision=revision - 1,
        prev_hash=GENESIS_HASH,
        source="test",
        context=EventContext(actor=actor),
    )
    return AcceptedEvent(
        envelope=envelope,
        revision=revision,
        position=Position("t", 0, revision),
        occurred_at=occurred_at(envelope),
    )


def _spec(rng: random.Random) -> VersionSpec:
    return VersionSpec(description="d", signature=rng.choice(SIGNATURES))


def _history(rng: random.Random, length: int) -> ModelVersions:
    """A history the service could have made: every event decided on the whole state."""
    state = ModelVersions(MODEL)
    for revision in range(length):
        roll = rng.random()
        numbers = list(state.versions)
        if roll < 0.55 or not numbers:
            if rng.random() < 0.7:
                command: Command = CreateVersion(MODEL, _spec(rng), bump=rng.choice(list(Bump)))
            else:
                command = CreateVersion(
                    MODEL, _spec(rng), semver=SemVer(rng.randrange(4), rng.randrange(6), 0)
                )
        elif roll < 0.75:
            command = Delete(rng.choice(numbers), "gone", ())
        elif roll < 0.9:
            command = Finalize(rng.choice(numbers), True, ())
        else:
            command = Deprecate(rng.choice(numbers), "old")
        try:
            event = decide(state, command)
        except ModelregError:
            continue
        when = datetime(2026, 1, 1, tzinfo=UTC)
        state = evolve(state, event, EventMeta(MODEL, when, "tester", revision + 1))
    return state


def _commands(rng: random.Random, state: ModelVersions) -> list[Command]:
    numbers = [*state.versions, 0, max(state.versions, default=0) + 1]
    commands: list[Command] = [CreateVersion(MODEL, _spec(rng), bump=b) for b in Bump]
    semvers = {v.semver for v in state.versions.values()}
    for s in list(semvers)[:6]:
        commands.append(CreateVersion(MODEL, _spec(rng), semver=s))  # taken
        commands.append(CreateVersion(MODEL, _spec(rng), semver=SemVer(s.major, s.minor, s.pipeline + 1)))
        commands.append(CreateVersion(MODEL, _spec(rng), semver=SemVer(s.major, max(s.minor - 1, 0), 7)))
    commands += [CreateVersion(MODEL, _spec(rng), semver=SemVer(m, 0, 0)) for m in range(6)]
    for n in rng.sample(numbers, min(6, len(numbers))):
        commands += [
            Finalize(n, True, state.versions[n].spec.files if n in state.versions else ()),
            Deprecate(n, "r"),
            Delete(n, "r", ()),
            UpdateVersion(n, ("description",), "new", {}),
        ]
    commands.append(SetRetention(3))
    return commands


def _answer(state: ModelVersions, command: Command) -> Any:
    try:
        return decide(state, command)
    except ModelregError as error:
        return (type(error).__name__, str(error))


async def _store(pool: asyncpg.Pool, schema: str, state: ModelVersions) -> None:
    s = quote_schema(schema)
    await pool.execute(f"TRUNCATE {s}.model_versions")
    values = ", ".join(f"${i}::jsonb" if i == 8 else f"${i}" for i in range(1, 15))
    await pool.executemany(
        f"INSERT INTO {s}.model_versions ({VERSION_COLUMNS}) VALUES ({values})",
        [_version_row(v, True) for v in state.versions.values()],
    )


async def test_a_command_decides_on_its_partial_load_as_on_the_whole_aggregate(reader: Any) -> None:
    pool, versions, schema = reader
    rng = random.Random(13)
    decided = 0
    for _ in range(40):
        state = _history(rng, rng.randrange(1, 60))
        await _store(pool, schema, state)
        full = (await versions.load(MODEL)).state
        assert full.versions == state.versions
        for command in _commands(rng, state):
            part = command.semver if isinstance(command, CreateVersion) else getattr(command, "number", None)
            partial = (await versions.load_for(MODEL, part)).state
            assert _answer(partial, command) == _answer(full, command), command
            decided += 1
    assert decided > 2000


async def test_the_partial_load_reads_a_bounded_number_of_versions(reader: Any) -> None:
    pool, versions, schema = reader
    rng = random.Random(7)
    state = _history(rng, 1)
    for revision in range(2, 400):
        event = decide(state, CreateVersion(MODEL, VersionSpec(), bump=rng.choice(list(Bump))))
        state = evolve(state, event, EventMeta(MODEL, datetime(2026, 1, 1, tzinfo=UTC), "t", revision))
    await _store(pool, schema, state)
    assert len(state.versions) == 399
    for part in (None, 17, SemVer(1, 2, 3), SemVer(0, 0, 0)):
        loaded = (await versions.load_for(MODEL, part)).state
        assert len(loaded.versions) <= 6, (part, sorted(loaded.versions))


async def test_the_fold_still_refuses_a_taken_number_or_semver_with_a_long_history(reader: Any) -> None:
    pool, versions, schema = reader
    state = ModelVersions(MODEL)
    for revision in range(1, 201):
        event = decide(state, CreateVersion(MODEL, VersionSpec(), bump=Bump.MINOR))
        state = evolve(state, event, EventMeta(MODEL, datetime(2026, 1, 1, tzinfo=UTC), "t", revision))
    await _store(pool, schema, state)

    taken_semver = VersionCreated(201, state.versions[100].semver, VersionSpec(description="dup semver"))
    taken_number = VersionCreated(50, SemVer(9, 0, 0), VersionSpec(description="dup number"))
    fresh = VersionCreated(201, SemVer(9, 9, 9), VersionSpec(description="fine"))
    async with pool.acquire() as conn, conn.transaction():
        await VersioningProjection().apply(
            conn, schema, [_accepted(taken_semver, 201), _accepted(taken_number, 202), _accepted(fresh, 203)]
        )
    rows = await pool.fetch(
        f"SELECT number, semver, spec->>'description' AS d FROM {quote_schema(schema)}.model_versions"
        " WHERE number IN (50, 201) ORDER BY number"
    )
    assert [(r["number"], r["semver"], r["d"]) for r in rows] == [
        (50, str(state.versions[50].semver), "d" if state.versions[50].spec.description else ""),
        (201, "9.9.9", "fine"),
    ]
    assert (await versions.load(MODEL)).state.versions[201].status is Status.PENDING_UPLOAD


def _forged(rng: random.Random, revision: int) -> Event:
    """Any event a record could hold, fitting or not: taken numbers and semvers, changes of
    versions that do not exist, of versions created earlier in the same batch."""
    number = rng.randrange(0, 12)
    roll = rng.random()
    if roll < 0.45:
        spec = VersionSpec(
            description=f"r{revision}",
            tags={"k": str(rng.randrange(3))},
            metrics={"acc": rng.random()} if rng.random() < 0.3 else {},
            files=(ArtifactFile("m.pt", 3, "a" * 64),) if rng.random() < 0.2 else (),
            signature=rng.choice(SIGNATURES),
        )
        return VersionCreated(number, SemVer(1, rng.randrange(8), 0), spec)
    if roll < 0.55:
        return ManifestDeclared(number, (ArtifactFile("w.bin", revision, "b" * 64, "application/x"),))
    if roll < 0.7:
        return VersionFinalized(number)
    if roll < 0.8:
        return VersionUpdated(number, ("description", "tags"), f"u{revision}", {"u": str(revision)})
    if roll < 0.87:
        return VersionDeprecated(number, "old")
    if roll < 0.94:
        return VersionDeleted(number, "gone")
    return RetentionSet(rng.randrange(5))


@pytest.mark.parametrize("variant", ["live", "rebuild", "rebuild, full specs"])
async def test_the_fold_in_any_batches_writes_what_the_domain_folds(reader: Any, variant: str) -> None:
    """The projection writes a created version that its batch does not change again straight
    from the event, and evolves it first when the batch does: whatever the batch boundaries,
    the rows (current and history) are those of evolving event by event with can_evolve's
    skips. So does its rebuild variant, which reads back only the versions it wrote and
    judges taken numbers and semvers from its memory; and either, storing specs in the full
    form (MODELREG_VERSION_SPEC_FORM=full), stores every spec member."""
    pool, _, schema = reader
    s = quote_schema(schema)
    compact = variant != "rebuild, full specs"
    for seed in range(12):
        live = VersioningProjection(compact_specs=compact)
        handler = live if variant == "live" else live.for_rebuild()
        rng = random.Random(seed)
        await pool.execute(f"TRUNCATE {s}.model_versions, {s}.model_version_history, {s}.retention_policies")
        events = [_forged(rng, revision) for revision in range(1, rng.randrange(20, 120))]
        expected, history = ModelVersions(MODEL), []
        accepted = []
        for revision, event in enumerate(events, start=1):
            accepted.append(_accepted(event, revision, actor=f"a{revision % 3}"))
            envelope = accepted[-1].envelope
            if not can_evolve(expected, event):
                continue
            number = getattr(event, "number", None)
            if number is not None and not isinstance(event, VersionCreated):
                history.append((*_version_row(expected.versions[number], compact), revision))
            meta = EventMeta(MODEL, codec.occurred_at(envelope), envelope.actor, revision)
            expected = evolve(expected, event, meta)
        cuts = sorted(rng.sample(range(1, len(accepted)), rng.randrange(0, 6)))
        for start, end in zip([0, *cuts], [*cuts, len(accepted)], strict=True):
            async with pool.acquire() as conn, conn.transaction():
                await handler.apply(conn, schema, accepted[start:end])
            handler.settle(True)
        rows = await pool.fetch(f"SELECT {VERSION_COLUMNS} FROM {s}.model_versions ORDER BY number")
        # The spec comes back as text: this pool has no jsonb codec.
        wanted = [
            _version_row(v, compact) for v in sorted(expected.versions.values(), key=lambda v: v.number)
        ]
        # The spec compared as JSON values: jsonb does not keep the text's key order.
        assert [(*r[:7], json.loads(r["spec"]), *r[8:]) for r in rows] == [
            (*w[:7], json.loads(str(w[7])), *w[8:]) for w in wanted
        ], seed
        stored_history = await pool.fetch(
            f"SELECT model, number, revision, status, spec FROM {s}.model_version_history"
            " ORDER BY number, revision"
        )
        assert [(*r[:4], json.loads(r["spec"])) for r in stored_history] == [
            (h[0], h[1], h[14], h[6], json.loads(str(h[7])))
            for h in sorted(history, key=lambda h: (h[1], h[14]))
        ], seed
        if not compact:
            assert all(set(json.loads(r["spec"])) >= {"code", "files", "signature"} for r in rows), seed
        policy = await pool.fetchval(f"SELECT keep_last_per_major FROM {s}.retention_policies")
        assert (policy or 0) == expected.keep_last_per_major, seed


async def test_a_rebuild_forgets_what_a_rolled_back_batch_wrote(reader: Any) -> None:
    """The rebuild variant remembers a batch's versions only once its transaction committed:
    after a rollback (a batch PostgreSQL refused, folded again in isolation) the same
    creations are written, not skipped as taken."""
    pool, _, schema = reader
    s = quote_schema(schema)
    handler = VersioningProjection().for_rebuild()
    events = [
        VersionCreated(1, SemVer(1, 0, 0), VersionSpec(description="one")),
        VersionCreated(2, SemVer(1, 1, 0), VersionSpec(description="two")),
    ]
    batch = [_accepted(event, revision) for revision, event in enumerate(events, start=1)]

    class RolledBack(Exception):
        pass

    with pytest.raises(RolledBack):
        async with pool.acquire() as conn, conn.transaction():
            await handler.apply(conn, schema, batch)
            raise RolledBack
    handler.settle(False)
    assert await pool.fetchval(f"SELECT count(*) FROM {s}.model_versions") == 0
    async with pool.acquire() as conn, conn.transaction():
        await handler.apply(conn, schema, batch)
    handler.settle(True)
    rows = await pool.fetch(f"SELECT number, semver FROM {s}.model_versions ORDER BY number")
    assert [(r["number"], r["semver"]) for r in rows] == [(1, "1.0.0"), (2, "1.1.0")]
    # And once committed, a creation of a taken number or semver is skipped without a read.
    duplicate = VersionCreated(3, SemVer(1, 0, 0), VersionSpec(description="dup"))
    async with pool.acquire() as conn, conn.transaction():
        await handler.apply(conn, schema, [_accepted(duplicate, 3)])
    handler.settle(True)
    assert await pool.fetchval(f"SELECT count(*) FROM {s}.model_versions") == 2

"""Rebuilding a live schema in a shadow, comparing the two, and swapping the shadow in.

While the shadow is built the live projector keeps folding, so the shadow
chases the live checkpoints: first a bulk fold up to where the live projector
stood at the start, then catch-up folds, then, holding an EXCLUSIVE lock on the
live `checkpoints` table (every projector transaction starts by locking its
checkpoint row, so this pauses the live projector's commits but no reads), a
last fold to exactly the live checkpoints. Only then are the two schemas
comparable row for row, and only then may the shadow replace the live schema:
in the same transaction, every live table is locked ACCESS EXCLUSIVE
(checkpoints first, which the projector also takes first, so the two cannot
deadlock), the live schema is renamed away and dropped and the shadow renamed
to the live name. A read in flight finishes first; a read that arrives during
the swap waits, then resolves the schema-qualified names again (PostgreSQL
re-checks a name after waiting for its lock; prepared statements are re-planned
once their tables are dropped) and sees the new tables. The paused projector's
next transaction finds its checkpoint in the swapped-in table at the very
offset it expected: nothing skipped, nothing folded twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from modelreg.eventlog import decode
from modelreg.eventlog.envelope import UndecodableRecord
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.projections.batch import ProjectionHandler, Record
from modelreg.projections.replay import (
    BOOKKEEPING_TABLES,
    create_schema,
    fold_in_workers,
    fold_topic,
    read_log,
    table_digests,
)
from modelreg.projections.schema import quote_schema

Checkpoints = dict[tuple[str, int], int]
"""(topic, partition) -> next offset."""

CATCH_UP_ROUNDS = 5
SETTLE_GAP = 2_000
"""Records the shadow may still lack when the live projector is paused for the last fold."""


@dataclass(frozen=True)
class ReadModel:
    """A service's schema and the folds that fill it (full topic name -> handler)."""

    service: str
    schema: str
    routes: Mapping[str, ProjectionHandler]

    @property
    def tables(self) -> list[str]:
        """Every table a digest covers: the read models, then the fold's bookkeeping."""
        tables = [t for handler in self.routes.values() for t in handler.read_model_tables]
        return [*dict.fromkeys(tables), *BOOKKEEPING_TABLES]


@dataclass(frozen=True)
class Difference:
    table: str
    key: str
    """The first differing row's primary key (as JSON), in key order."""
    live: str | None
    shadow: str | None


@dataclass
class ReplayResult:
    service: str
    events: int = 0
    seconds: float = 0.0
    checkpoints: Checkpoints = field(default_factory=dict)
    live_digest: dict[str, str] = field(default_factory=dict)
    shadow_digest: dict[str, str] = field(default_factory=dict)
    difference: Difference | None = None
    swapped: bool = False

    @property
    def matches(self) -> bool:
        return self.live_digest == self.shadow_digest


async def checkpoints(conn: asyncpg.Connection, schema: str) -> Checkpoints:
    rows = await conn.fetch(f"SELECT topic, partition, next_offset FROM {quote_schema(schema)}.checkpoints")
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def first_difference(conn: asyncpg.Connection, live: str, shadow: str, table: str) -> Difference:
    """The first row (in primary-key order) that differs between the two schemas' `table`."""
    quote_schema(table)
    key_columns = await conn.fetch(
        "SELECT a.attname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        f"{quote_schema(live)}.{table}",
    )
    names = [r["attname"] for r in key_columns]
    key = (
        "jsonb_build_object(" + ", ".join(f"'{n}', t.\"{n}\"" for n in names) + ")"
        if names
        else "to_jsonb(t)"
    )
    row = await conn.fetchrow(
        f"""
WITH l AS (SELECT {key} AS key, t::text AS row FROM {quote_schema(live)}.{table} AS t),
     s AS (SELECT {key} AS key, t::text AS row FROM {quote_schema(shadow)}.{table} AS t)
SELECT coalesce(l.key, s.key)::text AS key, l.row AS live, s.row AS shadow
FROM l FULL JOIN s ON l.key = s.key
WHERE l.row IS DISTINCT FROM s.row
ORDER BY coalesce(l.key, s.key) LIMIT 1
"""
    )
    if row is None:  # rows equal as sets, yet hashed differently: cannot happen with a total order
        return Difference(table, "", None, None)
    return Difference(table, row["key"], row["live"], row["shadow"])


async def fold_up_to(
    pool: asyncpg.Pool,
    model: ReadModel,
    shadow: str,
    kafka: KafkaSettings,
    target: Checkpoints,
    on_records: Callable[[int], None] | None = None,
    fresh: bool = False,
) -> int:
    """Folds every topic of `model` into `shadow` from the shadow's checkpoints up to `target`
    (`fresh`: the shadow was just created, see replay.fold_topic)."""
    async with pool.acquire() as conn:
        done = await checkpoints(conn, shadow)

    async def fold(topic: str, handler: ProjectionHandler) -> int:
        until = {p: offset for (t, p), offset in target.items() if t == topic}
        since = {p: offset for (t, p), offset in done.items() if t == topic}
        return await fold_topic(
            pool,
            schema=shadow,
            topic=topic,
            handler=handler,
            kafka=kafka,
            until=until,
            since=since,
            on_records=on_records,
            fresh=fresh,
        )

    counts = await asyncio.gather(*(fold(topic, handler) for topic, handler in model.routes.items()))
    return sum(counts)


WORKERS_FROM = 20_000
"""Records from which a build folds in worker processes by default: starting them (a fork
server that imports the handlers, then a fork per worker) costs about a second of CPU,
which a smaller log would not win back."""


def workers_for(target: Checkpoints, requested: int | None = None) -> int:
    """How many processes fold up to `target`: `requested`, or by default one per partition
    of the topic with the most (rebuild_all's share: partition p to worker p % n) once the
    log reaches WORKERS_FROM records, else the calling process alone."""
    if requested is not None:
        return max(1, requested)
    if remaining(target, {}) < WORKERS_FROM:
        return 1
    return max(Counter(topic for topic, _ in target).values(), default=1)


async def build(
    pool: asyncpg.Pool,
    model: ReadModel,
    kafka: KafkaSettings,
    *,
    schema: str,
    target: Checkpoints,
    on_records: Callable[[int], None] | None = None,
    dsn: str = "",
    workers: int | None = None,
) -> int:
    """Folds `model`'s topics from offset 0 up to `target` into `schema` (dropped and created
    afresh, indexes after the load); returns the records folded. With the `dsn` of `pool`'s
    database the fold runs in `workers` processes (workers_for's default); without it, in
    this one."""
    handlers = list(model.routes.values())
    async with pool.acquire() as conn:
        await create_schema(conn, schema, handlers, fresh=True, indexed=False)
    processes = workers_for(target, workers) if dsn else 1
    if processes > 1:
        folded = await fold_in_workers(
            dsn,
            schema=schema,
            routes=model.routes,
            kafka=kafka,
            processes=processes,
            until=target,
            on_records=on_records,
        )
        count = sum(records for records, _ in folded.values())
    else:
        count = await fold_up_to(pool, model, schema, kafka, target, on_records, fresh=True)
    async with pool.acquire() as conn:
        for handler in handlers:  # indexes after the load (DESIGN.md)
            await conn.execute(handler.ddl(schema))
    return count


async def cut_at(kafka: KafkaSettings, topics: Sequence[str], time: datetime) -> Checkpoints:
    """Per partition of `topics`, the offset of its first event that occurred after `time`
    (the end when none did): the log as it stood at `time`."""
    cut: Checkpoints = {}
    for topic in topics:
        reached: set[int] = set()
        async for partition, records in read_log(kafka, topic):
            if partition in reached:
                continue
            later = next((r.offset for r in records if _occurred_after(r, time)), None)
            if later is None:
                cut[(topic, partition)] = records[-1].offset + 1
            else:
                cut[(topic, partition)] = later
                reached.add(partition)
    return cut


def _occurred_after(record: Record, time: datetime) -> bool:
    try:
        envelope = decode(record.value)
    except UndecodableRecord:
        return False  # never an event: it changes nothing, wherever the cut falls
    return envelope.occurred_at.ToDatetime(tzinfo=UTC) > time


def remaining(target: Checkpoints, done: Checkpoints) -> int:
    return sum(max(0, offset - done.get(key, 0)) for key, offset in target.items())


class _Mismatch(Exception):
    """Rolls the settling transaction back (the live projector resumes) without a swap."""


async def replay_into_shadow(
    pool: asyncpg.Pool,
    model: ReadModel,
    kafka: KafkaSettings,
    *,
    shadow: str,
    swap: bool,
    schema_change: bool = False,
    on_records: Callable[[int], None] | None = None,
    on_target: Callable[[int], None] | None = None,
    lock_timeout_s: float = 30.0,
    dsn: str = "",
    workers: int | None = None,
) -> ReplayResult:
    """Rebuilds `model` from offset 0 into `shadow`, compares it with the live schema at
    the same checkpoints and, when asked and equal, swaps it in (see the module's doc).
    Without a swap, or on a mismatch, the shadow is left for inspection. With
    `schema_change` (the DDL or the fold changed, so rows may differ from the old
    layout by design) the difference is reported and the swap happens anyway.

    `on_target` hears the number of records to fold whenever the live checkpoints move on.
    The first, bulk fold runs in worker processes as `build` decides (`dsn`, `workers`); the
    catch-up folds after it, each a few thousand records, in this process.
    """
    started = asyncio.get_running_loop().time()
    result = ReplayResult(model.service)
    async with pool.acquire() as conn:
        target = await checkpoints(conn, model.schema)
    if on_target is not None:
        on_target(remaining(target, {}))
    result.events += await build(
        pool, model, kafka, schema=shadow, target=target, on_records=on_records, dsn=dsn, workers=workers
    )
    for _ in range(CATCH_UP_ROUNDS):
        async with pool.acquire() as conn:
            target = await checkpoints(conn, model.schema)
            gap = remaining(target, await checkpoints(conn, shadow))
        if gap <= SETTLE_GAP:
            break
        if on_target is not None:
            on_target(gap)
        result.events += await fold_up_to(pool, model, shadow, kafka, target, on_records)
    live, s = quote_schema(model.schema), quote_schema(shadow)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
            await conn.execute(f"LOCK TABLE {live}.checkpoints IN EXCLUSIVE MODE")
            target = await checkpoints(conn, model.schema)
            result.events += await fold_up_to(pool, model, shadow, kafka, target, on_records)
            # Partitions the live projector knows but never folded a record of (offset 0).
            await conn.execute(
                f"INSERT INTO {s}.checkpoints SELECT * FROM {live}.checkpoints ON CONFLICT DO NOTHING"
            )
            reached = await checkpoints(conn, shadow)
            if reached != target:
                raise RuntimeError(f"the shadow stopped at {reached}, short of the live checkpoints {target}")
            result.checkpoints = target
            result.live_digest = await table_digests(conn, model.schema, model.tables)
            result.shadow_digest = await table_digests(conn, shadow, model.tables)
            if not result.matches:
                table = next(t for t in model.tables if result.live_digest[t] != result.shadow_digest[t])
                result.difference = await first_difference(conn, model.schema, shadow, table)
                if not schema_change:
                    raise _Mismatch
            if swap:
                await swap_schemas(conn, model.schema, shadow)
                result.swapped = True
    except _Mismatch:
        pass
    result.seconds = asyncio.get_running_loop().time() - started
    return result


async def swap_schemas(conn: asyncpg.Connection, live: str, shadow: str) -> None:
    """Inside the caller's transaction: the shadow takes the live schema's name; the old
    live schema is dropped. Every live table is locked first, checkpoints leading."""
    tables = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname <> 'checkpoints', c.relname",
        live,
    )
    q = quote_schema(live)
    if tables:
        names = ", ".join(f'{q}."{r["relname"]}"' for r in tables)
        await conn.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
    # The one table that is not a fold of the log (command_aborts): the shadow takes it over.
    carried = {r["relname"] for r in tables} & {"command_aborts"}
    for table in sorted(carried):
        target = f'{quote_schema(shadow)}."{table}"'
        if await conn.fetchval("SELECT to_regclass($1)", target) is not None:
            await conn.execute(f'INSERT INTO {target} SELECT * FROM {q}."{table}" ON CONFLICT DO NOTHING')
    retired = quote_schema(f"{live}_retired")
    await conn.execute(f"DROP SCHEMA IF EXISTS {retired} CASCADE")
    await conn.execute(f"ALTER SCHEMA {q} RENAME TO {retired}")
    await conn.execute(f"ALTER SCHEMA {quote_schema(shadow)} RENAME TO {q}")
    await conn.execute(f"DROP SCHEMA {retired} CASCADE")

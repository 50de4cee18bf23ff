"""Rebuilding read models from the log, and proving they match.

`rebuild` folds a topic (`rebuild_all` several, concurrently) from offset 0
into a fresh (shadow) schema with the very same batch code the live projector
uses; `digest` hashes the ordered rows of a schema's tables, so two schemas can
be compared exactly. Chasing a running projector and swapping the shadow in
are shadow.py's.

The end of the log is the high watermark reported by a fetch, never
`end_offsets()`, which Tansu answers wrongly.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import re
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from modelreg.eventlog import FoldState
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.projections.batch import (
    ProjectionHandler,
    Rebuildable,
    Record,
    apply_batch,
    ensure_checkpoint,
)
from modelreg.projections.schema import bookkeeping_ddl, quote_schema

# The fork server preloads the main module by its import name (_worker_context), so runpy,
# which runs it again in each worker as __mp_main__, warns that it was imported already:
# expected, and a line per worker on the operator's terminal otherwise.
warnings.filterwarnings(
    "ignore",
    message=r"'.*' found in sys\.modules after import of package",
    category=RuntimeWarning,
    module="runpy",
)

BOOKKEEPING_TABLES = ("stream_heads", "event_outcomes", "quarantine", "rejected_records")
REPLAY_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class ReplayStats:
    records: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else float("inf")


async def read_log(
    kafka: KafkaSettings,
    topic: str,
    *,
    until: Mapping[int, int] | None = None,
    max_records: int = 5000,
    share: tuple[int, int] = (0, 1),
    since: Mapping[int, int] | None = None,
) -> AsyncIterator[tuple[int, list[Record]]]:
    """Yields (partition, records) from offset 0 (or `since[partition]`) up to the end seen
    at the first fetch (or up to `until[partition]`, exclusive). With `share` (i, n), only
    the partitions p with p % n == i."""
    since = since or {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [
            TopicPartition(topic, p)
            for p in sorted(partitions)
            if p % share[1] == share[0] and (until is None or since.get(p, 0) < until.get(p, 1 << 62))
        ]
        if not tps:
            # aiokafka's NoGroupCoordinator.close() awaits a task it has just cancelled; one
            # cancelled before its first step (nothing awaited since start()) raises
            # CancelledError there. A worker whose share of a topic is already done got here.
            await asyncio.sleep(0)
            return
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, since.get(tp.partition, 0))
        ends: dict[TopicPartition, int] = {}
        positions = {tp: since.get(tp.partition, 0) for tp in tps}

        def done(tp: TopicPartition) -> bool:
            return tp in ends and positions[tp] >= ends[tp]

        while not all(done(tp) for tp in tps):
            batches = await consumer.getmany(timeout_ms=500, max_records=max_records)
            for tp in tps:
                if tp not in ends:
                    highwater = consumer.highwater(tp)
                    if highwater is not None:
                        ends[tp] = min(highwater, until.get(tp.partition, highwater)) if until else highwater
            for tp, records in batches.items():
                wanted = [
                    Record(r.offset, r.value)
                    for r in records
                    if positions[tp] <= r.offset < ends.get(tp, 1 << 62)
                ]
                if wanted:
                    positions[tp] = wanted[-1].offset + 1
                    yield tp.partition, wanted
                if tp in ends and records and records[-1].offset + 1 >= ends[tp]:
                    positions[tp] = max(positions[tp], ends[tp])
                    consumer.pause(tp)
    finally:
        await consumer.stop()


async def create_schema(
    conn: asyncpg.Connection,
    schema: str,
    handlers: Sequence[ProjectionHandler],
    *,
    fresh: bool,
    indexed: bool = True,
) -> None:
    if fresh:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_schema(schema)} CASCADE")
    await conn.execute(bookkeeping_ddl(schema))
    for handler in handlers:
        await conn.execute(handler.ddl(schema) if indexed else without_secondary_indexes(handler.ddl(schema)))


def without_secondary_indexes(ddl: str) -> str:
    """A handler's DDL without its `CREATE INDEX` statements (unique indexes stay: they hold
    invariants). A rebuild creates them once after the fold (DESIGN.md: build indexes after
    the load) by running the full DDL, whose statements are all IF NOT EXISTS."""
    return _SECONDARY_INDEX.sub("", ddl)


_SECONDARY_INDEX = re.compile(r"CREATE INDEX[^;]*;")


async def rebuild(
    pool: asyncpg.Pool,
    *,
    schema: str,
    topic: str,
    handler: ProjectionHandler,
    kafka: KafkaSettings,
    until: Mapping[int, int] | None = None,
    fresh: bool = True,
) -> ReplayStats:
    """Folds `topic` from offset 0 into `schema` (dropped and recreated when fresh)."""
    started = time.perf_counter()
    async with pool.acquire() as conn:
        await create_schema(conn, schema, [handler], fresh=fresh, indexed=False)
    count = await fold_topic(
        pool, schema=schema, topic=topic, handler=handler, kafka=kafka, until=until, fresh=fresh
    )
    async with pool.acquire() as conn:
        await conn.execute(handler.ddl(schema))
    return ReplayStats(count, time.perf_counter() - started)


async def rebuild_all(
    pool: asyncpg.Pool,
    *,
    schema: str,
    routes: Mapping[str, ProjectionHandler],
    kafka: KafkaSettings,
    fresh: bool = True,
    processes: int = 1,
    dsn: str = "",
) -> dict[str, ReplayStats]:
    """Folds every topic of `routes` (full topic name -> handler) into `schema`, all at once;
    returns each topic's stats, timed from the common start.

    Topics are independent folds (a reference cache keeps its streams under its own scope),
    and so are partitions, so they run concurrently, as the live projector folds them. The
    fold is Python-bound: with `processes` > 1 (and the `dsn` of `pool`'s database) the
    partitions are shared out among that many worker processes, partition p to worker
    p % processes, each with its own consumer and connections.
    """
    started = time.perf_counter()
    async with pool.acquire() as conn:
        await create_schema(conn, schema, list(routes.values()), fresh=fresh, indexed=False)

    async def index(handler: ProjectionHandler) -> None:
        async with pool.acquire() as conn:
            await conn.execute(handler.ddl(schema))

    if processes > 1:
        if not dsn:
            raise ValueError("worker processes need the database's dsn")
        wall_started = time.time()
        shares = await fold_in_workers(
            dsn, schema=schema, routes=routes, kafka=kafka, processes=processes, fresh=fresh
        )
        for handler in routes.values():
            await index(handler)
        return {topic: ReplayStats(count, ended - wall_started) for topic, (count, ended) in shares.items()}

    async def fold(topic: str, handler: ProjectionHandler) -> ReplayStats:
        count = await fold_topic(pool, schema=schema, topic=topic, handler=handler, kafka=kafka, fresh=fresh)
        await index(handler)
        return ReplayStats(count, time.perf_counter() - started)

    results = await asyncio.gather(*(fold(topic, handler) for topic, handler in routes.items()))
    return dict(zip(routes, results, strict=True))


async def fold_in_workers(
    dsn: str,
    *,
    schema: str,
    routes: Mapping[str, ProjectionHandler],
    kafka: KafkaSettings,
    processes: int,
    until: Mapping[tuple[str, int], int] | None = None,
    fresh: bool = True,
    on_records: Callable[[int], None] | None = None,
) -> dict[str, tuple[int, float]]:
    """Folds every topic of `routes` into `schema` in `processes` worker processes, partition
    p to worker p % processes, each with its own consumer and connections (to `dsn`), from
    offset 0 up to `until` ((topic, partition) -> offset, exclusive; the end seen at the
    first fetch without it). Returns per topic the records folded and when (wall clock) the
    last worker finished it. `on_records` hears, about five times a second, of the records
    the workers have folded since it last heard."""
    context = _worker_context(routes.values())
    progress = context.Value("q", 0)
    loop = asyncio.get_running_loop()
    until_of = (
        {topic: {p: offset for (t, p), offset in until.items() if t == topic} for topic in routes}
        if until is not None
        else None
    )
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_report_progress_to, initargs=(progress,)
    ) as executor:
        folding = asyncio.gather(
            *(
                loop.run_in_executor(
                    executor, _fold_share, dsn, schema, dict(routes), kafka, (i, processes), fresh, until_of
                )
                for i in range(processes)
            )
        )
        try:
            heard = 0
            while not folding.done():
                await asyncio.wait([folding], timeout=0.2)
                if on_records is not None and (folded := progress.value) > heard:
                    on_records(folded - heard)
                    heard = folded
            shares = folding.result()
        except BaseException:
            # Interrupted (Ctrl-C cancels this task; the workers ignore SIGINT) or a worker
            # failed: the others stop now, not once they have folded the rest of their share.
            folding.cancel()
            # Its outcome is this exception's: taken, so that nothing logs it as never retrieved.
            folding.add_done_callback(lambda done: done.cancelled() or done.exception())
            _stop_workers(executor)
            raise
    return {
        topic: (sum(share[topic][0] for share in shares), max(share[topic][1] for share in shares))
        for topic in routes
    }


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor has no public way to stop a running call (3.14's terminate_workers).
    for process in list(executor._processes.values()):
        process.terminate()


def _worker_context(handlers: Iterable[ProjectionHandler]) -> multiprocessing.context.BaseContext:
    """Where rebuild_all's workers come from: forked from a fork server, not spawned.

    Not forked from this process, which runs an event loop and the clients' threads. A
    spawned worker imported this module, the handlers' and the main module anew, about a
    second of CPU each: with three workers, a fifth of a 100k-event replay's CPU and half
    of its wall time at 50k/s. The fork server (started once per process, then reused)
    imports them once, and each worker is a fork of it.

    The main module is preloaded by its import name too. Every worker still runs it again
    as `__mp_main__` (multiprocessing's main fix-up), and on Python 3.11 the server's own
    "__main__" preload does nothing (it needs a main_path that the preparation data does
    not carry). So without the import name each worker imported all of what the main module
    imports: `python -m bench.replay`'s three workers spent ~0.8 s of CPU on it per rebuild,
    8 us an event of a 100k-event replay (bench/RESULTS.md, 2026-12-07). With it, a worker
    only runs the module's own body. A main module run as a script path (no import name)
    is run again by each worker, imports included.
    """
    context = multiprocessing.get_context("forkserver")
    main_name = getattr(sys.modules["__main__"].__spec__, "name", None)
    if main_name and main_name.endswith("__main__"):
        # A package's __main__.py runs unguarded code on import; the fix-up skips it too.
        main_name = None
    # Read once, when the server starts; a handler module imported later is imported by
    # each worker that needs it, as a spawned one would.
    context.set_forkserver_preload(
        [
            # First, so that a Ctrl-C while the server still imports the rest is ignored too.
            "modelreg.projections.worker_signals",
            "__main__",
            *([main_name] if main_name else []),
            __name__,
            *sorted({type(h).__module__ for h in handlers}),
        ]
    )
    return context


def _collect_rarely() -> None:
    """Cyclic garbage collection tuned for a worker that folds a log and exits.

    A rebuild's batch keeps ten thousand records' envelopes, positions, outcomes and rows
    alive at once. With the default thresholds the collector scans the young objects every
    700 allocations and, every hundred scans or so, everything alive, the fold memory
    too: building a batch's list of AcceptedEvent took 5.8 us an event with collections
    and 0.5 without (bench/RESULTS.md, the replay section of 2026-12-04). Reference counting
    frees a batch's objects once it is written; the collector only finds cycles, which the
    fold does not make per event. So what the fork server imported is frozen out of every
    collection, and collections come about a hundred times less often, which still bounds
    the memory cycles could take in a long replay.
    """
    gc.freeze()
    gc.set_threshold(100_000, 20, 100)


_progress: Synchronized[int] | None = None
"""In a worker process: the records all workers have folded (fold_in_workers polls it)."""


def _report_progress_to(progress: Synchronized[int]) -> None:
    global _progress
    _progress = progress


def _count_folded(records: int) -> None:
    if _progress is not None:
        with _progress.get_lock():
            _progress.value += records


def _fold_share(
    dsn: str,
    schema: str,
    routes: dict[str, ProjectionHandler],
    kafka: KafkaSettings,
    share: tuple[int, int],
    fresh: bool,
    until: dict[str, dict[int, int]] | None,
) -> dict[str, tuple[int, float]]:
    """A worker process of fold_in_workers: folds its share of every topic's partitions;
    returns per topic the records read and when (wall clock) it finished."""
    _collect_rarely()

    async def run() -> dict[str, tuple[int, float]]:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:

            async def fold(topic: str, handler: ProjectionHandler) -> tuple[int, float]:
                count = await fold_topic(
                    pool,
                    schema=schema,
                    topic=topic,
                    handler=handler,
                    kafka=kafka,
                    until=until[topic] if until is not None else None,
                    share=share,
                    fresh=fresh,
                    on_records=_count_folded,
                )
                return count, time.time()

            done = await asyncio.gather(*(fold(topic, handler) for topic, handler in routes.items()))
            return dict(zip(routes, done, strict=True))
        finally:
            await pool.close()

    return asyncio.run(run())


async def fold_topic(
    pool: asyncpg.Pool,
    *,
    schema: str,
    topic: str,
    handler: ProjectionHandler,
    kafka: KafkaSettings,
    until: Mapping[int, int] | None = None,
    share: tuple[int, int] = (0, 1),
    since: Mapping[int, int] | None = None,
    on_records: Callable[[int], None] | None = None,
    fresh: bool = False,
) -> int:
    """Reads `topic` (from offset 0, or `since`, up to the end seen at the first fetch, or
    to `until`: partition -> offset, exclusive, where an `until` that names no partition
    wants nothing) and folds it with one writer per partition; returns the records read.
    `on_records` hears of each batch once it is folded, for a progress bar.

    `fresh`: the schema was just created and this fold is its partitions' only writer, from
    offset 0; each writer then keeps its partition's fold memory instead of reading it back
    per batch (batch.apply_batch's `memory`), and folds with the handler's rebuild variant
    when it has one (batch.Rebuildable).

    Each writer takes a pooled connection per batch, so while one batch waits for
    PostgreSQL the log is read and other partitions' batches are folded (DESIGN.md:
    pipelined writers); the pool's size bounds how many batches are in flight.
    """
    if fresh and any(since.values() if since else ()):
        raise ValueError("a fresh fold starts at offset 0")
    if until is not None and all((since or {}).get(p, 0) >= offset for p, offset in until.items()):
        return 0  # every partition `until` names is folded that far already (or it names none)
    count = 0
    queues: dict[int, asyncio.Queue[list[Record] | None]] = {}

    async def write(partition: int, queue: asyncio.Queue[list[Record] | None]) -> None:
        position: int | None = None
        memory = FoldState() if fresh else None
        rebuilding = handler.for_rebuild() if fresh and isinstance(handler, Rebuildable) else None
        while (records := await queue.get()) is not None:
            async with pool.acquire() as conn:
                if position is None:
                    position = await ensure_checkpoint(conn, schema, handler.name, topic, partition)
                position = await apply_batch(
                    conn,
                    schema=schema,
                    handler=rebuilding or handler,
                    topic=topic,
                    partition=partition,
                    expected_next_offset=position,
                    records=records,
                    integrity=kafka.integrity,
                    memory=memory,
                    settle=rebuilding.settle if rebuilding else None,
                )
            if on_records is not None:
                on_records(len(records))

    async with asyncio.TaskGroup() as writers:

        async def send(partition: int, records: list[Record] | None) -> None:
            if partition not in queues:
                # Two batches queued per partition: enough to keep a writer busy, and it
                # bounds memory when the log is read faster than it is folded.
                queues[partition] = asyncio.Queue(maxsize=2)
                writers.create_task(write(partition, queues[partition]))
            await queues[partition].put(records)

        pending: dict[int, list[Record]] = {}
        # Fetches are small; folding in large batches amortises the per-batch round trips.
        async for partition, records in read_log(kafka, topic, until=until, share=share, since=since):
            pending.setdefault(partition, []).extend(records)
            count += len(records)
            if len(pending[partition]) >= REPLAY_BATCH:
                await send(partition, pending.pop(partition))
        for partition, records in pending.items():
            await send(partition, records)
        for partition in list(queues):
            await send(partition, None)
    return count


async def table_digests(conn: asyncpg.Connection, schema: str, tables: Sequence[str]) -> dict[str, str]:
    """Per table, a hash of its rows in a total order: equal hashes mean equal tables."""
    s = quote_schema(schema)
    digests = {}
    for table in tables:
        quote_schema(table)
        digests[table] = await conn.fetchval(
            f"SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {s}.{table} AS t"
        )
    return digests


async def digest(conn: asyncpg.Connection, schema: str, tables: Sequence[str]) -> str:
    """A hash of every row of `tables`, in a total order; equal digests mean equal tables."""
    return ";".join(
        f"{table}:{value}" for table, value in (await table_digests(conn, schema, tables)).items()
    )

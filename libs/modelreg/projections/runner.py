"""The projector: consumes a service's topics and folds them into its schema, exactly once.

One consumer per service process serves every topic the service folds (its own
and its reference caches): each consumer long-polls the broker every couple of
milliseconds, so consumers, not work, were what kept an idle stack busy.

On assignment each partition is sought to the checkpoint stored in Postgres;
Kafka's committed group offsets play no part. If a batch fails, the consumer is
sought back to the checkpoint and the batch is fetched again, so nothing is
skipped and, because the checkpoint commits with the writes, nothing doubles.
Partitions are independent folds, so the batches of one fetch are applied
concurrently, each on its own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from modelreg.commands.contracts import LocalVerdict
from modelreg.eventlog import Outcome, Position
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.observability.metrics import PROJECTED_RECORDS, PROJECTOR_LAG
from modelreg.projections.batch import Fenced, ProjectionHandler, Record, apply_batch, ensure_checkpoint

log = structlog.get_logger(__name__)

DEFAULT_FETCH_MAX_WAIT_MS = 25
"""How long a projector's fetch waits for records. Tansu re-checks a waiting fetch instead of
waking it on new data, so this bounds how soon a service folds what others (or other
replicas) wrote (DESIGN.md); a command folds its own append from the produce response
unless MODELREG_LOCAL_FOLD=0. The idle polls of three services and the broker took 0.77 of
2 cores at 5 ms, 0.27 at 25 and 0.11 at 100; sequential creates were 15.4 / 10.8 / 10.7 ms
p50 (bench/RESULTS.md, 2026-12-04). Apache Kafka answers as soon as data arrives."""


@dataclass(frozen=True, slots=True)
class ProjectorSettings:
    fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS
    max_records: int = 5000
    max_partition_fetch_bytes: int = 4 * 1024 * 1024
    # None: this process takes every partition. A group id lets several
    # replicas share partitions; the checkpoint fence keeps a zombie out.
    group_id: str | None = None
    session_timeout_ms: int = 10_000
    retry_delay_s: float = 0.5


class Projector:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        schema: str,
        routes: Mapping[str, ProjectionHandler],
        kafka: KafkaSettings,
        name: str = "",
        settings: ProjectorSettings = ProjectorSettings(),
    ) -> None:
        """`routes` maps each (full) topic name to the handler that folds it."""
        if not routes:
            raise ValueError("a projector needs at least one topic")
        self._pool = pool
        self._schema = schema
        self._routes = dict(routes)
        self._name = name or "+".join(h.name for h in self._routes.values())
        self._kafka = kafka
        self._settings = settings
        self._positions: dict[TopicPartition, int] = {}
        # One fold at a time per partition: the consumer's batches and fold_appended.
        self._folding: dict[TopicPartition, asyncio.Lock] = {}
        # Records this process appended and awaits the fold of: offset -> value.
        self._appended: dict[TopicPartition, dict[int, bytes]] = {}
        # Their outcomes, by event id, from a fold of a run, until each appender takes its own.
        self._verdicts: dict[str, Outcome] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches_applied = 0

    @property
    def topics(self) -> list[str]:
        return list(self._routes)

    @property
    def assigned_partitions(self) -> list[int]:
        return sorted(tp.partition for tp in self._positions)

    async def start(self) -> None:
        settings = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            client_id=f"{self._kafka.client_id}-{self._name}",
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(1000, settings.session_timeout_ms // 4),
        )
        self._consumer = consumer
        if settings.group_id:
            consumer.subscribe(self.topics, listener=_SeekToCheckpoint(self))
            await consumer.start()
        else:
            await consumer.start()
            assigned = [
                TopicPartition(topic, p)
                for topic in self.topics
                for p in sorted(await self._discover_partitions(consumer, topic))
            ]
            consumer.assign(assigned)
            await self.seek_to_checkpoints(assigned)
        self._task = asyncio.create_task(self._run(), name=f"projector-{self._name}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # A stopped projector folds nothing, commands' own appends included (fold_appended
        # folds only partitions with a position); start() seeks to the checkpoints again.
        self._positions.clear()
        if self._consumer:
            await self._consumer.stop()

    async def _discover_partitions(self, consumer: AIOKafkaConsumer, topic: str) -> set[int]:
        for _ in range(50):
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                return partitions
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {topic} does not exist")

    async def seek_to_checkpoints(self, partitions: list[TopicPartition]) -> None:
        assert self._consumer is not None
        async with self._pool.acquire() as conn:
            for tp in partitions:
                offset = await ensure_checkpoint(
                    conn, self._schema, self._routes[tp.topic].name, tp.topic, tp.partition
                )
                self._positions[tp] = offset
                self._folding.setdefault(tp, asyncio.Lock())
                self._consumer.seek(tp, offset)
        log.info(
            "projector_assigned",
            projector=self._name,
            positions={f"{tp.topic}[{tp.partition}]": o for tp, o in self._positions.items()},
        )

    def forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._positions.pop(tp, None)

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=self._settings.max_records)
            except KafkaError as exc:
                log.warning("projector_fetch_failed", projector=self._name, error=str(exc))
                await asyncio.sleep(self._settings.retry_delay_s)
                continue
            # Revoked while fetching: not ours to fold any more.
            fetched = [
                (tp, [Record(r.offset, r.value) for r in records])
                for tp, records in batches.items()
                if tp in self._positions
            ]
            if len(fetched) == 1:
                await self._fold(*fetched[0])
            elif fetched:
                await asyncio.gather(*(self._fold(tp, records) for tp, records in fetched))
            for tp, position in self._positions.items():
                # The high watermark of the last fetch, never end_offsets(): Tansu's is wrong.
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    PROJECTOR_LAG.labels(self._routes[tp.topic].name, tp.topic, tp.partition).set(
                        max(0, highwater - position)
                    )

    async def fold_appended(self, position: Position, value: bytes, event_id: str) -> LocalVerdict:
        """Folds a record this process has just appended, from the produce response.

        The broker has acknowledged these bytes at this offset, so folding them now
        is folding the log, only without waiting for the next fetch (which Tansu
        answers only when its wait ends), so the fetch wait is off the write path
        and can be set for idle CPU. Only a run of records that starts
        at the checkpoint is folded; a record behind a gap (another writer's, not
        fetched yet) waits for its fetch like any other. Appends that queue behind
        one fold go into the next together, one transaction for all of them. The
        consumer skips these records later, as they are below the checkpoint.
        `folded` once the record is folded (by this call, a neighbour's, or the
        consumer), with its outcome when this process judged it.
        """
        tp = TopicPartition(position.topic, position.partition)
        lock = self._folding.get(tp)
        if lock is None:
            return LocalVerdict(folded=False)  # not a partition this projector folds
        waiting = self._appended.setdefault(tp, {})
        waiting[position.offset] = value
        try:
            async with lock:
                folded_to = self._positions.get(tp)
                if folded_to is None:
                    return LocalVerdict(folded=False)
                run: list[Record] = []
                while folded_to + len(run) in waiting:
                    offset = folded_to + len(run)
                    run.append(Record(offset, waiting[offset]))
                if run:
                    await self._apply(tp, run, self._verdicts)
                return LocalVerdict(
                    folded=self._positions.get(tp, 0) > position.offset,
                    outcome=self._verdicts.get(event_id),
                )
        finally:
            del waiting[position.offset]
            self._verdicts.pop(event_id, None)

    async def _fold(self, tp: TopicPartition, records: list[Record]) -> None:
        async with self._folding[tp]:
            if tp in self._positions:
                await self._apply(tp, records)

    async def _apply(
        self,
        tp: TopicPartition,
        records: list[Record],
        verdicts: dict[str, Outcome] | None = None,
    ) -> None:
        assert self._consumer is not None
        handler = self._routes[tp.topic]
        try:
            async with self._pool.acquire() as conn:
                self._positions[tp] = await apply_batch(
                    conn,
                    schema=self._schema,
                    handler=handler,
                    topic=tp.topic,
                    partition=tp.partition,
                    expected_next_offset=self._positions[tp],
                    records=records,
                    integrity=self._kafka.integrity,
                    verdicts=verdicts,
                )
            self.batches_applied += 1
            PROJECTED_RECORDS.labels(handler.name, tp.topic).inc(len(records))
        except Fenced as fenced:
            log.warning("projector_fenced", projection=handler.name, error=str(fenced))
            self._positions[tp] = fenced.stored
            self._consumer.seek(tp, fenced.stored)
        except Exception:
            # Database trouble or a handler bug: retry the same batch from the
            # checkpoint rather than skip it, since skipping would lose events.
            log.exception("projector_batch_failed", projection=handler.name, partition=tp.partition)
            await asyncio.sleep(self._settings.retry_delay_s)
            self._consumer.seek(tp, self._positions[tp])


class _SeekToCheckpoint(ConsumerRebalanceListener):
    def __init__(self, projector: Projector) -> None:
        self._projector = projector

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._projector.forget(list(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._projector.seek_to_checkpoints(list(assigned))

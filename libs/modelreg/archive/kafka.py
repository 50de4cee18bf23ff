"""Copying a Kafka log into a segment store (archive) and back (restore).

The end of a partition is learnt from a fetch's high watermark, or by consuming
until nothing more comes, never from `end_offsets()`, which Tansu answers wrongly.
Where archiving resumes comes from the archive's own index, never from Kafka's
group offsets: the archiver has no consumer group.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord, RecordMetadata

from modelreg.archive import (
    MANIFEST,
    ArchivedRecord,
    Manifest,
    SegmentInfo,
    SegmentStore,
    TopicIndex,
    encode_segment,
    load_manifest,
    segment_name,
    sha256_hex,
)
from modelreg.eventlog.topics import ensure_topics

log = structlog.get_logger(__name__)

SEGMENT_RECORDS = 20_000
"""A catching-up archiver cuts a segment at this many records; a caught-up one at every poll."""
_IDLE_POLLS_TO_END = 2


def modelreg_topics(topic_prefix: str) -> re.Pattern[str]:
    """The topics the archiver follows: every `modelreg.<name>.v1` under the prefix."""
    return re.compile(rf"^{re.escape(topic_prefix)}modelreg\.[a-z0-9_]+\.v1$")


def _consumer(bootstrap_servers: str, fetch_max_wait_ms: int) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id="modelreg-archiver",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )


async def discover_topics(consumer: AIOKafkaConsumer, topic_prefix: str) -> dict[str, int]:
    """Topic -> partition count for every modelreg topic the cluster has now."""
    pattern = modelreg_topics(topic_prefix)
    names = await consumer.topics()
    return {
        name: len(consumer.partitions_for_topic(name) or ())
        for name in sorted(names)
        if pattern.match(name) and consumer.partitions_for_topic(name)
    }


async def caught_up(consumer: AIOKafkaConsumer, tp: TopicPartition) -> bool:
    """Whether the consumer has read all a fetch said the partition holds."""
    highwater = consumer.highwater(tp)
    return highwater is not None and await consumer.position(tp) >= highwater


def _archived(record: ConsumerRecord[bytes, bytes]) -> ArchivedRecord:
    return ArchivedRecord(
        record.offset,
        record.timestamp,
        record.key,
        record.value,
        tuple((name, bytes(value)) for name, value in record.headers),
    )


@dataclass(slots=True)
class ArchiveStats:
    records: int = 0
    segments: int = 0
    seconds: float = 0.0
    positions: dict[str, dict[int, int]] = field(default_factory=dict)
    """Topic -> partition -> next offset to archive, when the run ended."""

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class Archiver:
    """Follows every modelreg topic and appends what it reads to the archive, in order."""

    def __init__(
        self,
        store: SegmentStore,
        *,
        bootstrap_servers: str,
        topic_prefix: str = "",
        poll_ms: int = 50,
        discover_every_s: float = 1.0,
    ) -> None:
        self._store = store
        self._bootstrap = bootstrap_servers
        self._prefix = topic_prefix
        self._poll_ms = poll_ms
        self._discover_every_s = discover_every_s

    async def run(self, *, follow: bool = False, stop: asyncio.Event | None = None) -> ArchiveStats:
        """Archives up to the end of every topic and returns; with `follow`, keeps going
        until `stop` is set, then drains to the end before returning (a clean stop loses nothing)."""
        stop = stop or asyncio.Event()
        started = time.perf_counter()
        stats = ArchiveStats()
        manifest = await load_manifest(self._store)
        consumer = _consumer(self._bootstrap, fetch_max_wait_ms=min(self._poll_ms, 100))
        await consumer.start()
        try:
            assigned: set[TopicPartition] = set()
            pending: dict[TopicPartition, list[ArchivedRecord]] = {}
            idle_polls = 0
            discovered_at = 0.0
            draining = not follow
            while True:
                if not draining and stop.is_set():
                    draining, idle_polls = True, 0
                if time.monotonic() - discovered_at >= self._discover_every_s and (follow or not assigned):
                    discovered_at = time.monotonic()
                    if await self._assign_new(consumer, manifest, assigned, pending):
                        idle_polls = 0
                if not assigned:
                    if draining:
                        break
                    await _sleep_or_stop(stop, self._poll_ms / 1000)
                    continue
                batches = await consumer.getmany(timeout_ms=self._poll_ms, max_records=SEGMENT_RECORDS)
                for tp, records in batches.items():
                    pending.setdefault(tp, []).extend(_archived(r) for r in records)
                at_end = {tp: await caught_up(consumer, tp) for tp in assigned}
                live = follow and not draining
                cut = [
                    tp
                    for tp, records in pending.items()
                    if records
                    and (
                        len(records) >= SEGMENT_RECORDS
                        # Following live, a caught-up partition is written at once (the loss window);
                        # catching up, only once a poll brings it nothing more (fewer, larger segments).
                        or (at_end[tp] and (live or not batches.get(tp)))
                    )
                ]
                for tp in cut:
                    records = pending.pop(tp)
                    await self._write_segment(manifest, tp, records)
                    stats.records += len(records)
                    stats.segments += 1
                if cut:
                    # One index write per poll, after every segment it names is durable.
                    await self._store.write(MANIFEST, manifest.to_json())
                if not any(batches.values()):
                    idle_polls += 1
                else:
                    idle_polls = 0
                if draining and all(at_end.values()) and not pending and idle_polls >= _IDLE_POLLS_TO_END:
                    break
            stats.positions = {
                topic: {p: index.next_offset(p) for p in range(index.partitions)}
                for topic, index in manifest.topics.items()
            }
        finally:
            await consumer.stop()
        stats.seconds = time.perf_counter() - started
        return stats

    async def _assign_new(
        self,
        consumer: AIOKafkaConsumer,
        manifest: Manifest,
        assigned: set[TopicPartition],
        pending: Mapping[TopicPartition, list[ArchivedRecord]],
    ) -> bool:
        topics = await discover_topics(consumer, self._prefix)
        changed = False
        for topic, partitions in topics.items():
            index = manifest.topics.get(topic)
            if index is None:
                manifest.topics[topic] = TopicIndex(partitions)
                changed = True
            elif index.partitions != partitions:
                # Kafka can only add partitions; keys then map elsewhere, so say it loudly.
                log.warning("archive.partitions_changed", topic=topic, was=index.partitions, now=partitions)
                index.partitions = partitions
                changed = True
        wanted = {TopicPartition(t, p) for t, n in topics.items() for p in range(n)}
        new = wanted - assigned
        if new:
            assigned |= new
            consumer.assign(sorted(assigned))
            # assign() forgets positions: each partition continues after what is held or indexed.
            for tp in assigned:
                held = pending.get(tp)
                consumer.seek(
                    tp, held[-1].offset + 1 if held else manifest.topics[tp.topic].next_offset(tp.partition)
                )
            log.info("archive.following", topics=topics)
        if changed:
            await self._store.write(MANIFEST, manifest.to_json())
        return bool(new) or changed

    async def _write_segment(
        self, manifest: Manifest, tp: TopicPartition, records: list[ArchivedRecord]
    ) -> None:
        data = encode_segment(records)
        info = SegmentInfo(
            name=segment_name(tp.topic, tp.partition, records[0].offset),
            base_offset=records[0].offset,
            last_offset=records[-1].offset,
            records=len(records),
            bytes=len(data),
            sha256=sha256_hex(data),
        )
        await self._store.write(info.name, data)
        manifest.topics[tp.topic].segments.setdefault(tp.partition, []).append(info)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def read_partitions(
    bootstrap_servers: str, tps: Sequence[TopicPartition]
) -> AsyncIterator[tuple[TopicPartition, list[ArchivedRecord]]]:
    """Every record of these partitions from offset 0 to their end (the high watermark a
    fetch reports once nothing more arrives), with one consumer."""
    if not tps:
        return
    consumer = _consumer(bootstrap_servers, fetch_max_wait_ms=20)
    await consumer.start()
    try:
        consumer.assign(list(tps))
        for tp in tps:
            consumer.seek(tp, 0)
        remaining = set(tps)
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=200, max_records=SEGMENT_RECORDS)
            for tp, records in batches.items():
                if records:
                    yield tp, [_archived(r) for r in records]
            for tp in list(remaining):
                if not batches.get(tp) and await caught_up(consumer, tp):
                    remaining.discard(tp)
                    consumer.pause(tp)
    finally:
        await consumer.stop()


async def partition_ends(bootstrap_servers: str, topics: Mapping[str, int]) -> dict[str, dict[int, int]]:
    """Each partition's high watermark, from a fetch (a partition with no fetch answer yet counts as unknown
    and is retried until it answers)."""
    consumer = _consumer(bootstrap_servers, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t, n in topics.items() for p in range(n)]
        existing = await consumer.topics()
        tps = [tp for tp in tps if tp.topic in existing]
        ends: dict[str, dict[int, int]] = {topic: {} for topic in topics}
        if not tps:
            return ends
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        deadline = time.monotonic() + 30
        while any(consumer.highwater(tp) is None for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError("no fetch answered with a high watermark within 30 s")
            await consumer.getmany(timeout_ms=50, max_records=1)
        for tp in tps:
            highwater = consumer.highwater(tp)
            assert highwater is not None
            ends[tp.topic][tp.partition] = highwater
        return ends
    finally:
        await consumer.stop()


class RestoreRefused(RuntimeError):
    """The target cluster is not empty, or the log cannot be reproduced offset for offset."""


async def produce_partition(
    producer: AIOKafkaProducer,
    tp: TopicPartition,
    batches: AsyncIterator[list[ArchivedRecord]],
    on_records: Callable[[int], None] = lambda _: None,
) -> int:
    """Re-produces a partition's records in order and checks each lands at its archived offset.

    Sends run ahead of the acknowledgements (up to IN_FLIGHT records), as one producer
    keeps a partition's batches in order."""
    count = 0
    in_flight: deque[tuple[int, asyncio.Future[RecordMetadata]]] = deque()

    async def settle(keep: int) -> None:
        while len(in_flight) > keep:
            archived_offset, future = in_flight.popleft()
            metadata = await future
            if metadata.offset != archived_offset:
                raise RestoreRefused(
                    f"{tp.topic}[{tp.partition}]: the record archived at offset {archived_offset} "
                    f"landed at {metadata.offset}; the restored log would not be identical"
                )

    async for records in batches:
        for record in records:
            future = await producer.send(
                tp.topic,
                value=record.value,
                key=record.key,
                partition=tp.partition,
                timestamp_ms=record.timestamp_ms,
                headers=list(record.headers),
            )
            in_flight.append((record.offset, future))
        await settle(IN_FLIGHT)
        count += len(records)
        on_records(len(records))
    await settle(0)
    return count


IN_FLIGHT = 20_000


def restore_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    # No retries: a retried batch could land twice or out of order, and each offset is checked anyway.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id="modelreg-restore",
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=1024 * 1024,
        max_request_size=2 * 1024 * 1024,
        request_timeout_ms=30_000,
    )


async def create_empty_topics(bootstrap_servers: str, topics: Mapping[str, int]) -> None:
    """Creates the topics; refuses any that already hold records or have another partition count."""
    ends = await partition_ends(bootstrap_servers, topics)
    non_empty = {topic: e for topic, e in ends.items() if any(e.values())}
    if non_empty:
        raise RestoreRefused(f"restore needs empty topics; these hold records already: {non_empty}")
    await ensure_topics(bootstrap_servers, topics)

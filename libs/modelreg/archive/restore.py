"""Restoring an archive into an empty cluster, and checking archives and restored logs.

Verification compares, per partition, the record count, the last offset, a digest of
every record (offset, timestamp, key, value, headers) and the hash-chain head of every
stream as the fold rule accepts it, between the archive and the log read back.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from modelreg.archive import (
    ArchivedRecord,
    CorruptArchive,
    Manifest,
    SegmentStore,
    load_manifest,
    offset_gaps,
    read_segment,
)
from modelreg.archive.kafka import (
    RestoreRefused,
    create_empty_topics,
    produce_partition,
    read_partitions,
    restore_producer,
)
from modelreg.eventlog.envelope import UndecodableRecord, decode
from modelreg.eventlog.fold import FoldState


@dataclass(slots=True)
class PartitionSummary:
    """What identifies a partition's content: equal summaries mean equal logs."""

    records: int = 0
    last_offset: int = -1
    digest: str = ""
    chain_heads: dict[str, str] = field(default_factory=dict)
    """stream -> hex hash of its last accepted event."""
    undecodable: int = 0


class _Summarizer:
    def __init__(self) -> None:
        self.summary = PartitionSummary()
        self._hash = hashlib.sha256()
        self._fold = FoldState()

    def add(self, records: Iterable[ArchivedRecord]) -> None:
        for record in records:
            self.summary.records += 1
            self.summary.last_offset = record.offset
            for part in (record.key or b"", record.value or b"", repr(record.headers).encode()):
                self._hash.update(len(part).to_bytes(8, "big") + part)
            self._hash.update(f"{record.offset}:{record.timestamp_ms}".encode())
            try:
                envelope = decode(record.value)
            except UndecodableRecord:
                self.summary.undecodable += 1
                continue
            self._fold.apply(envelope)

    def done(self) -> PartitionSummary:
        self.summary.digest = self._hash.hexdigest()
        self.summary.chain_heads = {
            stream: head.hash.hex() for stream, head in sorted(self._fold.heads.items())
        }
        return self.summary


async def archived_records(
    store: SegmentStore, manifest: Manifest, topic: str, partition: int
) -> AsyncIterator[list[ArchivedRecord]]:
    """A partition's archived records in order, each segment checked against the index,
    the offsets checked to follow on from segment to segment without a gap."""
    expected = 0
    for info in manifest.topics[topic].segments.get(partition, []):
        records = await read_segment(store, info)
        for want, found in offset_gaps(records, expected):
            raise CorruptArchive(
                f"{topic}[{partition}]: offset {found} follows {want - 1} in {info.name}: "
                "the archive has a gap (a missing segment, or a log with non-contiguous offsets)"
            )
        expected = records[-1].offset + 1
        yield records


@dataclass(slots=True)
class VerifyReport:
    topics: dict[str, int] = field(default_factory=dict)
    """topic -> partitions"""
    partitions: dict[str, dict[int, PartitionSummary]] = field(default_factory=dict)
    segments: int = 0

    @property
    def records(self) -> int:
        return sum(s.records for parts in self.partitions.values() for s in parts.values())


async def verify_archive(store: SegmentStore) -> VerifyReport:
    """Checks an archive offline: every segment's checksum and framing, the index's
    continuity and contiguous offsets. Raises CorruptArchive naming the first fault."""
    manifest = await load_manifest(store)
    report = VerifyReport()
    for topic, index in manifest.topics.items():
        report.topics[topic] = index.partitions
        unknown = [p for p in index.segments if not 0 <= p < index.partitions]
        if unknown:
            raise CorruptArchive(
                f"{topic}: segments for partitions {unknown} of a {index.partitions}-partition topic"
            )
        for partition in range(index.partitions):
            summarizer = _Summarizer()
            async for records in archived_records(store, manifest, topic, partition):
                summarizer.add(records)
            report.segments += len(index.segments.get(partition, []))
            report.partitions.setdefault(topic, {})[partition] = summarizer.done()
    return report


@dataclass(slots=True)
class RestoreReport:
    archived: VerifyReport
    restored: dict[str, dict[int, PartitionSummary]]
    seconds: float

    @property
    def records(self) -> int:
        return self.archived.records

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def mismatches(self) -> list[str]:
        problems = []
        for topic, partitions in self.archived.partitions.items():
            for partition, want in partitions.items():
                got = self.restored.get(topic, {}).get(partition)
                where = f"{topic}[{partition}]"
                if got is None:
                    problems.append(f"{where}: not read back")
                    continue
                if (got.records, got.last_offset) != (want.records, want.last_offset):
                    problems.append(
                        f"{where}: {got.records} records up to offset {got.last_offset}, "
                        f"archived {want.records} up to {want.last_offset}"
                    )
                elif got.digest != want.digest:
                    problems.append(f"{where}: the records differ from the archived ones")
                if got.chain_heads != want.chain_heads:
                    differing = sorted(set(got.chain_heads.items()) ^ set(want.chain_heads.items()))
                    problems.append(f"{where}: chain heads differ, first at stream {differing[0][0]!r}")
        return problems


async def restore(
    store: SegmentStore, bootstrap_servers: str, on_records: Callable[[int], None] = lambda _: None
) -> RestoreReport:
    """Recreates every archived topic (same partition counts) in a cluster where they are
    empty or absent, re-produces every record at its archived offset, then reads the log
    back and compares it with the archive. Checks the archive first, so a corrupt one
    restores nothing."""
    started = time.perf_counter()
    archived = await verify_archive(store)
    manifest = await load_manifest(store)
    await create_empty_topics(bootstrap_servers, archived.topics)
    producer = restore_producer(bootstrap_servers)
    await producer.start()
    try:
        # Partitions are independent; within one, records go out in order on one producer.
        await asyncio.gather(
            *(
                produce_partition(
                    producer,
                    TopicPartition(topic, partition),
                    archived_records(store, manifest, topic, partition),
                    on_records,
                )
                for topic, partitions in archived.topics.items()
                for partition in range(partitions)
            )
        )
    finally:
        await producer.stop()
    tps = [TopicPartition(t, p) for t, n in archived.topics.items() for p in range(n)]
    summarizers = {tp: _Summarizer() for tp in tps}
    async for tp, records in read_partitions(bootstrap_servers, tps):
        summarizers[tp].add(records)
    restored: dict[str, dict[int, PartitionSummary]] = {}
    for tp, summarizer in summarizers.items():
        restored.setdefault(tp.topic, {})[tp.partition] = summarizer.done()
    return RestoreReport(archived, restored, time.perf_counter() - started)


__all__ = ["RestoreRefused", "RestoreReport", "VerifyReport", "restore", "verify_archive"]

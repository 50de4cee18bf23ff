"""Archive a real service's log, restore it into a second, empty Tansu, and check what a
user would: identical offsets, records and chain heads; corruption caught; resume without
duplicates; a follower that drains on stop."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest
from aiokafka import TopicPartition

from modelreg.archive import CorruptArchive, SegmentStore, load_manifest
from modelreg.archive.fs import FilesystemSegmentStore
from modelreg.archive.kafka import Archiver, RestoreRefused, read_partitions
from modelreg.archive.restore import restore, verify_archive
from modelreg.devstack import TansuBroker
from modelreg.runtime.settings import Settings
from tests.helpers import run_cli
from tests.integration.archive.conftest import create_models

if TYPE_CHECKING:
    from modelreg.gen.catalog.v1.catalog_pb2_grpc import CatalogServiceAsyncStub
    from modelreg.runtime.host import ServiceHost

PARTITIONS = 3


def archiver(store: SegmentStore, settings: Settings) -> Archiver:
    return Archiver(
        store, bootstrap_servers=settings.kafka.bootstrap_servers, topic_prefix=settings.kafka.topic_prefix
    )


async def whole_log(bootstrap: str, topic: str) -> list[tuple[int, int, bytes | None, bytes | None, tuple]]:
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    rows = []
    async for tp, records in read_partitions(bootstrap, tps):
        rows += [(tp.partition, r.offset, r.key, r.value, r.headers) for r in records]
    return sorted(rows, key=lambda row: (row[0], row[1]))


async def chain_heads_in_postgres(settings: Settings, schema: str) -> dict[str, str]:
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        rows = await conn.fetch(f'SELECT stream, hash FROM "{schema}".stream_heads')
    finally:
        await conn.close()
    return {row["stream"]: bytes(row["hash"]).hex() for row in rows}


async def test_restore_reproduces_offsets_records_and_chain_heads(
    segment_store: SegmentStore,
    archive_settings: Settings,
    archived_catalog: ServiceHost,
    archive_schema: str,
    archive_catalog_stub: CatalogServiceAsyncStub,
    empty_broker: TansuBroker,
) -> None:
    await create_models(archive_catalog_stub, 6)
    topic = archived_catalog.topic("modelreg.catalog.v1")
    stats = await archiver(segment_store, archive_settings).run()
    source = await whole_log(archive_settings.kafka.bootstrap_servers, topic)
    assert stats.records >= len(source) > 0

    report = await restore(segment_store, empty_broker.bootstrap_servers)

    assert report.mismatches() == []
    assert await whole_log(empty_broker.bootstrap_servers, topic) == source
    # The heads the fold computes from the restored log are the ones the live service holds.
    restored_heads = {
        stream: head
        for summary in report.restored[topic].values()
        for stream, head in summary.chain_heads.items()
    }
    assert restored_heads == await chain_heads_in_postgres(archive_settings, archive_schema)
    # A restore never writes into a topic that holds records.
    with pytest.raises(RestoreRefused, match="empty"):
        await restore(segment_store, empty_broker.bootstrap_servers)


async def test_a_corrupted_segment_is_detected_by_verify_and_by_restore(
    tmp_path: Path,
    archive_settings: Settings,
    archive_catalog_stub: CatalogServiceAsyncStub,
    empty_broker: TansuBroker,
) -> None:
    await create_models(archive_catalog_stub, 2)
    root = tmp_path / "archive"
    await archiver(FilesystemSegmentStore(root), archive_settings).run()
    url = f"file://{root}"
    assert run_ops("verify-archive", "--from", url).returncode == 0

    segment = next(root.glob("segments/**/*.seg"))
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x01
    segment.write_bytes(bytes(data))

    verified = run_ops("verify-archive", "--from", url)
    assert verified.returncode == 2
    assert "checksum mismatch" in verified.stderr and segment.name in verified.stderr
    with pytest.raises(CorruptArchive, match="checksum"):
        await restore(FilesystemSegmentStore(root), empty_broker.bootstrap_servers)
    # Nothing was restored from a corrupt archive.
    assert await whole_log(empty_broker.bootstrap_servers, next(iter(_topics(root)))) == []


def _topics(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "segments").iterdir())


def run_ops(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("ops", *args, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}, timeout=60)


async def test_a_resumed_archive_appends_without_duplicating(
    tmp_path: Path,
    archive_settings: Settings,
    archived_catalog: ServiceHost,
    archive_catalog_stub: CatalogServiceAsyncStub,
) -> None:
    root = tmp_path / "archive"
    store = FilesystemSegmentStore(root)
    topic = archived_catalog.topic("modelreg.catalog.v1")
    bootstrap = archive_settings.kafka.bootstrap_servers
    await create_models(archive_catalog_stub, 2)
    await archiver(store, archive_settings).run()
    archived_before = len(await whole_log(bootstrap, topic))
    first_segments = {p: p.read_bytes() for p in root.glob("segments/**/*.seg")}

    await create_models(archive_catalog_stub, 3)
    again = await archiver(store, archive_settings).run()

    source = await whole_log(bootstrap, topic)
    assert again.records == len(source) - archived_before >= 3 * 2  # only the new records
    for path, data in first_segments.items():
        assert path.read_bytes() == data  # append-only: old segments are untouched
    report = await verify_archive(store)
    assert report.partitions[topic] and sum(s.records for s in report.partitions[topic].values()) == len(
        source
    )
    manifest = await load_manifest(store)
    for partition, segments in manifest.topics[topic].segments.items():
        offsets = [(s.base_offset, s.last_offset) for s in segments]
        assert offsets == sorted(offsets)
        assert all(a[1] + 1 == b[0] for a, b in zip(offsets, offsets[1:], strict=False)), partition


async def test_a_follower_archives_new_writes_and_drains_on_stop(
    tmp_path: Path,
    archive_settings: Settings,
    archived_catalog: ServiceHost,
    archive_catalog_stub: CatalogServiceAsyncStub,
) -> None:
    store = FilesystemSegmentStore(tmp_path / "archive")
    stop = asyncio.Event()
    follower = asyncio.create_task(archiver(store, archive_settings).run(follow=True, stop=stop))
    topic = archived_catalog.topic("modelreg.catalog.v1")
    try:
        await create_models(archive_catalog_stub, 2)
        total = len(await whole_log(archive_settings.kafka.bootstrap_servers, topic))

        async def archived() -> int:
            manifest = await load_manifest(store)
            index = manifest.topics.get(topic)
            return sum(index.records(p) for p in range(index.partitions)) if index else 0

        async with asyncio.timeout(30):
            while True:  # polls the store: a follower signals nothing
                if await archived() >= total:
                    break
                await asyncio.sleep(0.05)
        # Writes made just before the stop are drained, not lost.
        await create_models(archive_catalog_stub, 2)
        stop.set()
        stats = await asyncio.wait_for(follower, 30)
    finally:
        stop.set()
    assert await archived() == len(await whole_log(archive_settings.kafka.bootstrap_servers, topic))
    assert stats.positions[topic] == {p: n for p, n in (await _ends(archive_settings, topic)).items()}


async def _ends(settings: Settings, topic: str) -> dict[int, int]:
    from modelreg.archive.kafka import partition_ends

    return (await partition_ends(settings.kafka.bootstrap_servers, {topic: PARTITIONS}))[topic]

"""Archive and restore rates, and the loss window of `make dev` (a kill -9 of the whole stack).

* archive: `modelreg ops archive` (run once) of a synthetic log to segments on disk;
* restore: `modelreg ops restore` of that archive into a fresh Tansu, verification included;
* loss window: with a follower polling every ARCHIVE_POLL_MS (as `make dev` runs it), the
  time from a broker's acknowledgement of a record to the archive's index naming it
  (segment and index fsynced). A kill -9 of the whole stack loses at most the records
  acknowledged within that window.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import common
from modelreg.archive import load_manifest
from modelreg.archive.fs import FilesystemSegmentStore
from modelreg.archive.kafka import Archiver
from modelreg.archive.restore import restore
from modelreg.cli.dev import ARCHIVE_POLL_MS
from modelreg.devstack import TansuBroker
from modelreg.eventlog.kafka import KafkaEventLog, KafkaSettings
from modelreg.eventlog.topics import ensure_topics

LOSS_WINDOW_SAMPLES = 100


async def measure_archive(bootstrap_servers: str, topic_prefix: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="modelreg-archive-bench-") as root:
        store = FilesystemSegmentStore(Path(root))
        archived = await Archiver(store, bootstrap_servers=bootstrap_servers, topic_prefix=topic_prefix).run()
        with TansuBroker.start() as fresh:
            report = await restore(store, fresh.bootstrap_servers)
        if report.mismatches():
            raise RuntimeError(f"restore mismatch: {report.mismatches()}")
    return {
        "records": archived.records,
        "archive_seconds": archived.seconds,
        "archive_per_second": archived.per_second,
        "restore_seconds": report.seconds,
        "restore_per_second": report.per_second,
        "loss_window": await measure_loss_window(bootstrap_servers),
    }


async def measure_loss_window(bootstrap_servers: str) -> dict[str, float]:
    """Acknowledged -> archived (durably indexed) per record, for records written one at a time."""
    kafka = KafkaSettings(bootstrap_servers, f"lossw{uuid.uuid4().hex[:6]}.")
    topic = kafka.topic("modelreg.catalog.v1")
    await ensure_topics(bootstrap_servers, {topic: 1})
    with tempfile.TemporaryDirectory(prefix="modelreg-loss-window-") as root:
        store = FilesystemSegmentStore(Path(root))
        stop = asyncio.Event()
        archiver = Archiver(
            store,
            bootstrap_servers=bootstrap_servers,
            topic_prefix=kafka.topic_prefix,
            poll_ms=ARCHIVE_POLL_MS,
        )
        follower = asyncio.create_task(archiver.run(follow=True, stop=stop))
        log = KafkaEventLog(kafka)
        await log.start()
        samples = []
        try:
            for i in range(LOSS_WINDOW_SAMPLES):
                position = await log.append_raw(topic, b"k", f"record {i}".encode())
                acked = time.perf_counter()
                while True:
                    index = (await load_manifest(store)).topics.get(topic)
                    if index is not None and index.next_offset(0) > position.offset:
                        break
                    await asyncio.sleep(0.001)
                samples.append(time.perf_counter() - acked)
        finally:
            await log.stop()
            stop.set()
            await follower
    return {**common.percentiles(samples), "max_ms": max(samples) * 1000, "poll_ms": ARCHIVE_POLL_MS}

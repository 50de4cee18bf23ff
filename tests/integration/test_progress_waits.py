"""Consistency-token waits that time out together: every one is a plain timeout (the service answers
DEADLINE_EXCEEDED), none an error from sharing the LISTEN connection, and nothing is left behind."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from modelreg.catalog.adapters.projection import CatalogProjection
from modelreg.projections.progress import ProgressListener
from modelreg.projections.replay import create_schema
from modelreg.runtime.settings import Settings

TOPIC = "waits.modelreg.catalog.v1"


async def listener(settings: Settings) -> ProgressListener:
    schema = f"waits_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        await create_schema(conn, schema, [CatalogProjection()], fresh=True)
    finally:
        await conn.close()
    progress = ProgressListener(settings.pg_dsn, schema, {TOPIC})
    await progress.start()
    return progress


async def test_64_waits_timing_out_together_all_time_out_and_leave_no_waiters(settings: Settings) -> None:
    progress = await listener(settings)
    try:
        for _ in range(3):
            results = await asyncio.gather(
                *(progress.wait_for({(TOPIC, 0): 10**9}, 0.3) for _ in range(64)), return_exceptions=True
            )
            assert results == [False] * 64
        assert dict(progress._waiters) == {}
    finally:
        await progress.stop()


async def test_invented_partitions_and_foreign_topics_leave_nothing_behind(settings: Settings) -> None:
    progress = await listener(settings)
    try:
        results = await asyncio.gather(
            *(progress.wait_for({(TOPIC, 1000 + i): 1}, 0.2) for i in range(64)), return_exceptions=True
        )
        assert results == [False] * 64
        # A topic this service does not fold is not waited for at all.
        assert await progress.wait_for({("another.topic", 7): 10**9}, 5.0) is True
        assert dict(progress._waiters) == {}
        assert progress._positions == {}
    finally:
        await progress.stop()

"""Replaying the promotion topic (and the versioning topic for the reference cache)
into a fresh schema reproduces the live tables and the history, digest for digest."""

from __future__ import annotations

import asyncpg

from modelreg.projections.batch import ProjectionHandler
from modelreg.projections.replay import digest, rebuild
from modelreg.promotion.adapters.caches import VersionFactsCache
from modelreg.promotion.adapters.projection import PromotionProjection
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.integration.promotion.conftest import Facts
from tests.integration.promotion.test_promotion_service import approve, new_model, request, set_policy


async def test_replay_reproduces_tables_and_history(
    promotion_settings: Settings, promotion_host: ServiceHost, promotion_stub, facts: Facts
) -> None:
    model = new_model()
    for n in (1, 2, 3):
        await facts.version(model, n)
    await set_policy(promotion_stub, model, required_approvals=2)
    await request(promotion_stub, model, ("STAGING", 1), ("champion", 2))
    pending = await request(promotion_stub, model, ("PRODUCTION", 2), deployments={"prod": {2: 80, 3: 20}})
    await approve(promotion_stub, pending.name, "bob")
    await approve(promotion_stub, pending.name, "carol")
    await request(promotion_stub, model, ("PRODUCTION", 3))  # left pending
    await request(promotion_stub, model, ("ARCHIVED", 1))

    pool = await asyncpg.create_pool(promotion_settings.pg_dsn, min_size=1, max_size=2)
    try:
        folds: list[tuple[str, ProjectionHandler, str]] = [
            ("modelreg.promotion.v1", PromotionProjection(), "promotion_replay"),
            ("modelreg.versioning.v1", VersionFactsCache(), "promotion_replay_versions"),
        ]
        for logical, handler, shadow in folds:
            topic = promotion_settings.kafka.topic(logical)
            async with pool.acquire() as conn:
                until = {
                    r["partition"]: r["next_offset"]
                    for r in await conn.fetch(
                        "SELECT partition, next_offset FROM promotion.checkpoints WHERE topic = $1", topic
                    )
                }
            await rebuild(
                pool, schema=shadow, topic=topic, handler=handler, kafka=promotion_settings.kafka, until=until
            )
            async with pool.acquire() as conn:
                live = await digest(conn, "promotion", handler.read_model_tables)
                replayed = await digest(conn, shadow, handler.read_model_tables)
                rows = await conn.fetchval(f"SELECT count(*) FROM {shadow}.{handler.read_model_tables[0]}")
                await conn.execute(f"DROP SCHEMA {shadow} CASCADE")
            assert rows > 0
            assert replayed == live
    finally:
        await pool.close()

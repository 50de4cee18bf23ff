"""Topic bootstrap: create the service topics, or check the existing ones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

log = structlog.get_logger(__name__)


async def ensure_topics(
    bootstrap_servers: str, topics: Mapping[str, int], replication_factor: int = 1
) -> None:
    """Creates topics (name -> partitions); existing ones are left alone.

    Raises if a topic has another partition count than asked for: keys would map
    to other partitions, which breaks per-stream ordering.
    """
    if not topics:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication_factor) for name, partitions in topics.items()]
        )
        # aiokafka returns per-topic error codes instead of raising.
        existing: set[str] = set()
        for entry in response.to_object()["topic_errors"]:
            code = entry["error_code"]
            if code == 0:
                continue
            error = for_code(code)
            if error is TopicAlreadyExistsError:
                existing.add(entry["topic"])
                continue
            raise error(f"creating topic {entry['topic']!r} failed: {entry.get('error_message')}")
        await _await_partitions(admin, topics, existing)
    finally:
        await admin.close()
    log.info("kafka.topics_ready", topics=dict(topics))


async def _await_partitions(
    admin: AIOKafkaAdminClient, topics: Mapping[str, int], existing: set[str], timeout: float = 5.0
) -> None:
    """Waits until metadata shows every topic with the requested partition count.

    New topics may take a moment to appear; a topic that already existed with
    another count never converges, so that fails at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        described = await admin.describe_topics(list(topics))
        actual = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
        wrong = {name: actual.get(name) for name, want in topics.items() if actual.get(name) != want}
        if not wrong:
            return
        settled = any(name in existing and name in actual for name in wrong)
        if settled or time.monotonic() >= deadline:
            raise RuntimeError(
                f"topics do not have the requested partitions: wanted {dict(topics)}, metadata shows {wrong}"
            )
        await asyncio.sleep(0.1)

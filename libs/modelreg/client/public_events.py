"""Following the public topic, `modelreg.public.v1`: CloudEvents 1.0 in Kafka binary mode.

    async for record in follow("127.0.0.1:9092"):
        print(record.event.get_type(), record.event.get_subject(), record.data)

Each record's CloudEvents `id` is stable across re-deliveries (the relay publishes at
least once): deduplicate on it. All events about one model are in one partition, in order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

PUBLIC_TOPIC = "modelreg.public.v1"


@dataclass(frozen=True, slots=True)
class PublicRecord:
    event: BaseCloudEvent
    partition: int
    offset: int
    headers: dict[str, bytes]
    timestamp_ms: int
    """The broker's record timestamp."""

    @property
    def id(self) -> str:
        return str(self.event.get_id())

    @property
    def type(self) -> str:
        return str(self.event.get_type())

    @property
    def subject(self) -> str:
        return str(self.event.get_subject())

    @property
    def data(self) -> dict[str, Any]:
        data = self.event.get_data()
        return data if isinstance(data, dict) else {}


def parse(
    partition: int, offset: int, key: bytes | None, value: bytes, headers: Any, ts: int
) -> PublicRecord:
    hdrs = {k: bytes(v) for k, v in (headers or [])}
    event = from_binary(KafkaMessage(headers=hdrs, key=key, value=value), JSONFormat())
    return PublicRecord(event, partition, offset, hdrs, ts)


async def follow(
    bootstrap_servers: str,
    topic: str = PUBLIC_TOPIC,
    *,
    since: dict[int, int] | None = None,
) -> AsyncIterator[PublicRecord]:
    """Every record of the topic from `since` (partition -> offset; default: the beginning),
    then new ones as they arrive, until the caller stops iterating. Keep the offsets you
    handled (record.partition, record.offset) and pass them back as `since` to resume."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, (since or {}).get(tp.partition, 0))
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for r in records:
                    yield parse(tp.partition, r.offset, r.key, r.value, r.headers, r.timestamp)
    finally:
        await consumer.stop()

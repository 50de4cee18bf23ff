"""The Kafka event log: appends envelopes and reports where they landed.

Protocol-generic aiokafka usage, so it runs on Apache Kafka in production and
on Tansu locally. Deliberately no idempotent producer and no transactions: the
fold rule makes duplicates harmless, and Tansu supports neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from modelreg.eventlog.envelope import to_kafka_message
from modelreg.eventlog.integrity import NO_INTEGRITY, LogIntegrity
from modelreg.eventlog.positions import Position
from modelreg.gen.events.v1.envelope_pb2 import Envelope

MAX_RECORD_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap_servers: str
    topic_prefix: str = ""
    linger_ms: int = 0
    client_id: str = "modelreg"
    max_record_bytes: int = MAX_RECORD_BYTES
    """The largest record value this service appends (MODELREG_MAX_RECORD_BYTES): at most
    the broker's limit (about 1 MB on Tansu and Kafka's default message.max.bytes)."""
    integrity: LogIntegrity = NO_INTEGRITY
    """The key this process signs its appends with and the keys every fold it runs trusts.
    Part of the log's settings so that each reader of the log (projector, replay, its
    worker processes) verifies with the same keys as the live fold."""

    def topic(self, name: str) -> str:
        """The physical topic of a logical one, e.g. `modelreg.catalog.v1`."""
        return f"{self.topic_prefix}{name}"


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of `key`, as Kafka's default partitioner (Java's and aiokafka's) picks it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class RecordTooLarge(ValueError):
    pass


class KafkaEventLog:
    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._partitions: dict[str, int] = {}
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=settings.client_id,
            acks="all",
            enable_idempotence=False,
            linger_ms=settings.linger_ms,
            max_request_size=settings.max_record_bytes + 64 * 1024,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def append(self, topic: str, envelope: Envelope) -> Position:
        """Appends one event, keyed by its stream, and returns its position once acked.

        The envelope is sealed in place first: it names the partition it is written to
        (the key's, by Kafka's default partitioner) and is signed with this process's key,
        so a copy of the record on any other partition never counts (DESIGN.md rule 12).
        """
        position, _ = await self.append_record(topic, envelope)
        return position

    async def append_record(self, topic: str, envelope: Envelope) -> tuple[Position, bytes]:
        """`append`, also returning the record's value as the broker acknowledged it, so
        the appender can fold exactly those bytes at that offset (the local fold)."""
        key = envelope.stream.encode()
        partition = partition_for(key, await self._partition_count(topic))
        self._settings.integrity.seal(envelope, partition)
        message = to_kafka_message(envelope)
        limit = self._settings.max_record_bytes
        size = len(message.value) + sum(len(k) + len(v) for k, v in message.headers.items())
        if size > limit:
            # Checked before the producer sees it: nothing is written.
            raise RecordTooLarge(f"the event would be a record of {size} bytes, the log takes {limit}")
        metadata = await self._producer.send_and_wait(
            topic,
            value=message.value,
            key=key,
            partition=partition,
            headers=list(message.headers.items()),
        )
        return Position(metadata.topic, metadata.partition, metadata.offset), message.value

    async def _partition_count(self, topic: str) -> int:
        # A topic's partition count never changes (topics.ensure_topics refuses another), so
        # the metadata is asked once per topic.
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = len(await self._producer.partitions_for(topic))
        return count

    async def append_raw(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> Position:
        """Appends bytes as they are; for tools and fault tests that re-produce records."""
        metadata = await self._producer.send_and_wait(topic, value=value, key=key, headers=headers)
        return Position(metadata.topic, metadata.partition, metadata.offset)

"""Building, sealing and (de)serialising event envelopes.

On Kafka an envelope travels as a CloudEvents 1.0 message in binary mode: the
record value is the protobuf-encoded Envelope and the CloudEvents attributes are
repeated as `ce_*` headers, so generic tooling can route on them without
knowing our schema.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloudevents.core.bindings.kafka import KafkaMessage, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from google.protobuf.message import DecodeError, Message

from modelreg.gen.events.v1.envelope_pb2 import Envelope

GENESIS_HASH = bytes(32)
CONTENT_TYPE = "application/protobuf"
DATA_SCHEMA = "modelreg.events.v1.Envelope"


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so ids sort roughly by creation time."""
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


@dataclass(frozen=True, slots=True)
class EventContext:
    """Who and what caused an event: filled in by the service, never by the client."""

    actor: str
    request_id: str = ""
    correlation_id: str = ""
    causation_id: str = ""


def build_envelope(
    *,
    stream: str,
    payload_field: str,
    payload: Message,
    expected_revision: int,
    prev_hash: bytes,
    source: str,
    context: EventContext,
    occurred_at: datetime | None = None,
) -> Envelope:
    """A sealed envelope carrying `payload` in the oneof field `payload_field`."""
    envelope = Envelope(
        event_id=new_event_id(),
        type=payload.DESCRIPTOR.full_name,
        stream=stream,
        expected_revision=expected_revision,
        actor=context.actor,
        request_id=context.request_id,
        correlation_id=context.correlation_id,
        causation_id=context.causation_id,
        source=source,
        prev_hash=prev_hash,
    )
    envelope.occurred_at.FromDatetime(occurred_at or datetime.now(UTC))
    getattr(envelope, payload_field).CopyFrom(payload)
    envelope.hash = content_hash(envelope)
    return envelope


def content_hash(envelope: Envelope) -> bytes:
    """SHA-256 over prev_hash and the envelope serialised with `hash`, `signature`,
    `signing_key_id` and `partition` cleared.

    prev_hash is inside the serialised bytes too; it is hashed first as well so
    the chain link stays explicit for verifiers in other languages.
    """
    # `hash` is cleared in place and put back rather than serialising a cleared copy: the
    # fold hashes every event of a replay, and the copy was a third of this function.
    # What the log's producer adds on append (eventlog/integrity.py: the partition, the key
    # id and the signature, which covers this hash and those) is left out too, so the hash
    # build_envelope sets is final, and an envelope without them hashes as it always did.
    sealed, signature, key_id = envelope.hash, envelope.signature, envelope.signing_key_id
    partition = envelope.partition if envelope.HasField("partition") else None
    envelope.hash = b""
    envelope.signature = b""
    envelope.signing_key_id = ""
    envelope.ClearField("partition")
    try:
        unsealed = envelope.SerializeToString(deterministic=True)
    finally:
        envelope.hash = sealed
        envelope.signature = signature
        envelope.signing_key_id = key_id
        if partition is not None:
            envelope.partition = partition
    return hashlib.sha256(envelope.prev_hash + unsealed).digest()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z, the Timestamp's lower bound
_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z, its upper bound


def occurred_at(envelope: Envelope) -> datetime:
    """`envelope.occurred_at` as an aware UTC datetime: Timestamp.ToDatetime(tzinfo=UTC)'s
    value (microseconds truncated), by arithmetic. ToDatetime is protobuf's pure-Python
    well-known type (a validity check, a timedelta, an astimezone); replay reads every
    event's time, and this is a fifth of its cost. An invalid timestamp still goes to
    ToDatetime, which raises as it always did."""
    stamp = envelope.occurred_at
    seconds, nanos = stamp.seconds, stamp.nanos
    if _MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos <= 999_999_999:
        # Positional: timedelta(days, seconds, microseconds) with keywords cost 2.5x as much.
        return _EPOCH + timedelta(0, seconds, nanos // 1000)
    return stamp.ToDatetime(tzinfo=UTC)


def payload_of(envelope: Envelope) -> tuple[str, Message]:
    field = envelope.WhichOneof("payload")
    if field is None:
        raise ValueError(f"event {envelope.event_id} has no payload")
    return field, getattr(envelope, field)


def encode(envelope: Envelope) -> bytes:
    """The record value of an event on the log."""
    return envelope.SerializeToString(deterministic=True)


def to_kafka_message(envelope: Envelope) -> KafkaMessage:
    event = CloudEvent(
        attributes={
            "id": envelope.event_id,
            "source": envelope.source or "modelreg",
            "type": envelope.type,
            "specversion": "1.0",
            "subject": envelope.stream,
            "time": envelope.occurred_at.ToDatetime(tzinfo=UTC),
            "datacontenttype": CONTENT_TYPE,
            "dataschema": DATA_SCHEMA,
        },
        data=encode(envelope),
    )
    message = to_binary(event, JSONFormat(), key_mapper=lambda _: envelope.stream.encode())
    return message


class UndecodableRecord(ValueError):
    """A record on a modelreg topic that is not an Envelope; it can never count."""


def decode(value: bytes | None) -> Envelope:
    if not value:
        raise UndecodableRecord("empty record value")
    envelope = Envelope()
    try:
        envelope.ParseFromString(value)
    except DecodeError as exc:
        raise UndecodableRecord(str(exc)) from exc
    if not envelope.event_id or not envelope.stream:
        raise UndecodableRecord("record lacks event_id or stream")
    return envelope

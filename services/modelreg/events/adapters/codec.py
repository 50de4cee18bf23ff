"""Accepted internal envelopes -> the domain's view of them, and public events -> CloudEvents."""

from __future__ import annotations

import json
from datetime import datetime

from cloudevents.core.bindings.kafka import KafkaMessage, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from google.protobuf.json_format import MessageToDict

from modelreg.events.domain.public import RULES, Internal, PublicEvent
from modelreg.gen.events.v1.envelope_pb2 import Envelope

CONTENT_TYPE = "application/json"
SCHEMA_BASE = "https://modelreg.io/schemas/events/"
"""The `$id` prefix of the checked-in schemas (services/modelreg/events/schemas/)."""


def internal_of(envelope: Envelope) -> Internal | None:
    """None for payloads that stay internal (no rule maps them)."""
    field = envelope.WhichOneof("payload")
    if field is None or field not in RULES:
        return None
    payload = MessageToDict(getattr(envelope, field), preserving_proto_field_name=True)
    return Internal(envelope.event_id, envelope.stream, envelope.actor, field, payload)


def data_text(event: PublicEvent) -> str:
    """Deterministic JSON (sorted keys), so a replay writes the same rows."""
    return json.dumps(event.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dataschema(ce_type_or_short: str) -> str:
    short = ce_type_or_short.removeprefix("io.modelreg.").removesuffix(".v1")
    return f"{SCHEMA_BASE}{short}.v1.json"


def to_kafka(
    *, event_id: str, ce_type: str, subject: str, source: str, occurred_at: datetime, data: str
) -> KafkaMessage:
    """A CloudEvents 1.0 Kafka message in binary mode: `ce_*` headers, the JSON data as the
    value, the subject (the model) as the key."""
    event = CloudEvent(
        attributes={
            "id": event_id,
            "source": source,
            "type": ce_type,
            "specversion": "1.0",
            "subject": subject,
            "time": occurred_at,
            "datacontenttype": CONTENT_TYPE,
            "dataschema": dataschema(ce_type),
        },
        data=data.encode(),
    )
    return to_binary(event, JSONFormat(), key_mapper=lambda _: subject.encode())

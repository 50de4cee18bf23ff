"""An accepted envelope of any topic -> its audit entry.

Generic over the payload oneof, so a topic added later is audited without new code:
the action is the payload's message name, the comment the first `comment` or `reason`
field found in it, the changes its set fields as compact JSON. An access denial names
the denied principal, method and resource instead of the recording service's.
"""

from __future__ import annotations

import json
from datetime import UTC

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from modelreg.audit.domain.entry import AuditEntry, resource_parts
from modelreg.eventlog.envelope import encode
from modelreg.projections.batch import AcceptedEvent

MAX_CHANGES_CHARS = 16_384
"""Longer payloads (big manifests) are summarised by their top-level field names."""
COMMENT_FIELDS = ("comment", "reason")
DENIAL_FIELD = "access_denied"


def entry_of(accepted: AcceptedEvent, leaf_index: int) -> AuditEntry | None:
    envelope = accepted.envelope
    field = envelope.WhichOneof("payload")
    if field is None:
        return None
    payload: Message = getattr(envelope, field)
    actor, resource, comment = envelope.actor, envelope.stream, _comment(payload)
    if field == DENIAL_FIELD:
        denial = envelope.access_denied.denial
        actor, resource = denial.principal or envelope.actor, denial.resource or envelope.stream
        comment = f"{denial.action}: {denial.reason}" if denial.reason else denial.action
    namespace, model = resource_parts(resource)
    if not namespace:
        namespace, model = resource_parts(envelope.stream)
    position = accepted.position
    return AuditEntry(
        event_id=envelope.event_id,
        occurred_at=envelope.occurred_at.ToDatetime(tzinfo=UTC),
        actor=_text(actor),
        action=payload.DESCRIPTOR.name,
        event_type=envelope.type or payload.DESCRIPTOR.full_name,
        resource=_text(resource),
        namespace=_text(namespace),
        model=_text(model),
        request_id=_text(envelope.request_id),
        correlation_id=_text(envelope.correlation_id),
        causation_id=_text(envelope.causation_id),
        comment=_text(comment),
        changes=changes_of(payload),
        source=_text(envelope.source),
        revision=accepted.revision,
        topic=position.topic,
        partition=position.partition,
        offset=position.offset,
        prev_hash=bytes(envelope.prev_hash),
        hash=bytes(envelope.hash),
        leaf_index=leaf_index,
        record=encode(envelope),
        stream=_text(envelope.stream),
    )


def changes_of(payload: Message) -> str:
    """The payload's set fields as compact JSON with sorted keys (deterministic, so a replay
    writes the same text)."""
    document = MessageToDict(payload, preserving_proto_field_name=True)
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(text) > MAX_CHANGES_CHARS:
        text = json.dumps({"truncated": True, "fields": sorted(document)}, separators=(",", ":"))
    return _text(text)


def _comment(message: Message, depth: int = 0) -> str:
    """The first non-empty `comment` or `reason` in the payload, searched breadth-first."""
    fields = message.ListFields()
    for descriptor, value in fields:
        if descriptor.name in COMMENT_FIELDS and isinstance(value, str) and value:
            return value
    if depth < 3:
        for _, value in fields:
            if isinstance(value, Message):  # a singular message field
                found = _comment(value, depth + 1)
                if found:
                    return found
    return ""


def _text(value: str) -> str:
    """Text PostgreSQL can store: a NUL written out."""
    return value.replace("\x00", "\\x00")

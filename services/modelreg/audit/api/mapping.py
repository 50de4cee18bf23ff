"""Audit entries to protos."""

from __future__ import annotations

from modelreg.audit.domain.entry import AuditEntry
from modelreg.gen.audit.v1 import audit_pb2 as pb


def entry_out(entry: AuditEntry) -> pb.AuditEvent:
    message = pb.AuditEvent(
        event_id=entry.event_id,
        actor=entry.actor,
        action=entry.action,
        event_type=entry.event_type,
        resource=entry.resource,
        namespace=entry.namespace,
        model=entry.model,
        request_id=entry.request_id,
        correlation_id=entry.correlation_id,
        causation_id=entry.causation_id,
        comment=entry.comment,
        changes=entry.changes,
        source=entry.source,
        revision=entry.revision,
        topic=entry.topic,
        partition=entry.partition,
        offset=entry.offset,
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )
    message.occur_time.FromDatetime(entry.occurred_at)
    return message

"""Audit entries to protos."""

from __future__ import annotations

from modelreg.audit.domain.entry import AuditEntry, SigningKeyInfo, StoredCheckpoint
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
        leaf_index=entry.leaf_index,
    )
    message.occur_time.FromDatetime(entry.occurred_at)
    return message


def key_out(key: SigningKeyInfo) -> pb.AuditKey:
    return pb.AuditKey(key_id=key.key_id, public_key_pem=key.public_key_pem, current=key.current)


def checkpoint_out(c: StoredCheckpoint) -> pb.Checkpoint:
    message = pb.Checkpoint(
        topic=c.topic,
        partition=c.partition,
        size=c.size,
        root=c.root,
        previous=c.previous,
        key_id=c.key_id,
        body=c.body,
        signature=c.signature,
    )
    message.sign_time.FromDatetime(c.sign_time)
    return message

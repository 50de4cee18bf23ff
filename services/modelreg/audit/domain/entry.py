"""An audit entry: one accepted event (or recorded denial) as the trail shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    event_id: str
    occurred_at: datetime
    actor: str
    action: str
    event_type: str
    resource: str
    namespace: str
    model: str
    request_id: str
    correlation_id: str
    causation_id: str
    comment: str
    changes: str
    source: str
    revision: int
    topic: str
    partition: int
    offset: int
    prev_hash: bytes
    hash: bytes
    leaf_index: int
    """The event's leaf in its partition's Merkle tree (accepted events in log order)."""
    record: bytes
    """The record bytes of the event (its envelope as the log holds it): the Merkle leaf."""
    stream: str
    """The event's stream (its hash chain); the resource, except for a denial."""

    @property
    def sort_key(self) -> tuple[datetime, str, int, int]:
        """The trail's total order: time, then log position."""
        return (self.occurred_at, self.topic, self.partition, self.offset)


def resource_parts(resource: str) -> tuple[str, str]:
    """(namespace id, model name) of a resource name; "" for what it does not name.

    `namespaces/ns/models/m/versions/3` -> ("ns", "namespaces/ns/models/m");
    `namespaces/ns` -> ("ns", "").
    """
    parts = resource.split("/")
    if len(parts) < 2 or parts[0] != "namespaces" or not parts[1]:
        return "", ""
    model = "/".join(parts[:4]) if len(parts) >= 4 and parts[2] == "models" and parts[3] else ""
    return parts[1], model


@dataclass(frozen=True, slots=True)
class SigningKeyInfo:
    key_id: str
    public_key_pem: str
    current: bool


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    topic: str
    partition: int
    size: int
    root: bytes
    previous: bytes
    sign_time: datetime
    key_id: str
    body: bytes
    signature: bytes

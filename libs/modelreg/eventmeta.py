"""What the log adds to every event, for `evolve` in the services' pure domains.

Pure: no gRPC, database, Kafka, S3 or generated protos (domain code imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class EventMeta:
    """Where, when and by whom an event was recorded, the stream revision it made, and its id."""

    stream: str
    occurred_at: datetime
    actor: str
    revision: int
    event_id: str = ""
    """The envelope's event_id: the id of what the event states, where it states one (a lineage record)."""

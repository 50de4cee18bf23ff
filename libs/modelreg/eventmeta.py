"""What the log adds to every event, for `evolve` in the services' pure domains.

Pure: no gRPC, database, Kafka, S3 or generated protos (domain code imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class EventMeta:
    """Where, when and by whom an event was recorded, and the stream revision it made."""

    stream: str
    occurred_at: datetime
    actor: str
    revision: int

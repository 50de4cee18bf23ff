"""The state a lineage decision reads: one record of a model's stream (the part a command names)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecordState:
    """What a supersede decision needs to know about the record it targets."""

    record_id: str
    model_version: str
    superseded_by: str | None

"""What a caller asks of a model's lineage: one command type per request."""

from __future__ import annotations

from dataclasses import dataclass

from modelreg.lineage.domain.values import LineageRecord


@dataclass(frozen=True, slots=True)
class RecordLineage:
    record: LineageRecord


@dataclass(frozen=True, slots=True)
class SupersedeRecord:
    record_id: str
    version: str
    """The superseded record's version, from its resource name."""
    record: LineageRecord
    reason: str


Command = RecordLineage | SupersedeRecord

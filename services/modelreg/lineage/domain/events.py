"""What the lineage log records: one event per command."""

from __future__ import annotations

from dataclasses import dataclass

from modelreg.lineage.domain.values import LineageRecord


@dataclass(frozen=True, slots=True)
class LineageRecorded:
    record: LineageRecord


@dataclass(frozen=True, slots=True)
class LineageRecordSuperseded:
    superseded_record: str
    record: LineageRecord
    reason: str


Event = LineageRecorded | LineageRecordSuperseded

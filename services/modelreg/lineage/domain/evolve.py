"""One lineage record's state through the events of its stream: what a supersede decision reads.

The read model folds the same events in SQL (adapters/projection.py); this is the rule it follows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from modelreg.eventmeta import EventMeta
from modelreg.lineage.domain.events import Event, LineageRecorded, LineageRecordSuperseded
from modelreg.lineage.domain.state import RecordState


def evolve(state: RecordState | None, event: Event, meta: EventMeta) -> RecordState:
    """From no state, the event states a new record whose id is the event's (a supersede states the
    successor). From a record's state, a supersede of it names its successor; other events leave it."""
    match event:
        case LineageRecorded():
            return state or RecordState(meta.event_id, event.record.model_version, None)
        case LineageRecordSuperseded():
            if state is None:
                return RecordState(meta.event_id, event.record.model_version, None)
            if event.superseded_record == state.record_id:
                return replace(state, superseded_by=meta.event_id)
            return state
        case _:
            assert_never(event)

"""Lineage events between the domain and their envelope payloads."""

from __future__ import annotations

from typing import assert_never

from google.protobuf.message import Message

from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.gen.lineage.v1 import events_pb2
from modelreg.lineage.domain.evaluations import EvaluationRecorded, ThresholdsSet
from modelreg.lineage.domain.events import Event, LineageRecorded, LineageRecordSuperseded
from modelreg.lineage.resources import (
    record_from_proto,
    record_to_proto,
    recorded_from_proto,
    recorded_to_proto,
    thresholds_set_from_proto,
    thresholds_set_to_proto,
)


def encode(event: Event) -> tuple[str, Message]:
    """(envelope payload field, payload message)."""
    match event:
        case LineageRecorded():
            return "lineage_recorded", events_pb2.LineageRecorded(record=record_to_proto(event.record))
        case LineageRecordSuperseded():
            return "lineage_record_superseded", events_pb2.LineageRecordSuperseded(
                superseded_record=event.superseded_record,
                record=record_to_proto(event.record),
                reason=event.reason,
            )
        case _:
            assert_never(event)


def decode(envelope: Envelope) -> Event | None:
    """The domain event of a lineage envelope; None for payloads this fold ignores."""
    field = envelope.WhichOneof("payload")
    if field == "lineage_recorded":
        m = envelope.lineage_recorded.record
        return LineageRecorded(record_from_proto(m, m.model_version))
    if field == "lineage_record_superseded":
        s = envelope.lineage_record_superseded
        return LineageRecordSuperseded(
            s.superseded_record, record_from_proto(s.record, s.record.model_version), s.reason
        )
    return None


EvaluationEvent = EvaluationRecorded | ThresholdsSet


def encode_evaluation(event: EvaluationEvent) -> tuple[str, Message]:
    match event:
        case EvaluationRecorded():
            return "evaluation_recorded", recorded_to_proto(event)
        case ThresholdsSet():
            return "degradation_thresholds_set", thresholds_set_to_proto(event)
        case _:
            assert_never(event)


def decode_evaluation(envelope: Envelope) -> EvaluationEvent | None:
    field = envelope.WhichOneof("payload")
    if field == "evaluation_recorded":
        return recorded_from_proto(envelope.evaluation_recorded)
    if field == "degradation_thresholds_set":
        return thresholds_set_from_proto(envelope.degradation_thresholds_set)
    return None

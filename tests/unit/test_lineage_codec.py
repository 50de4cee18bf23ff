"""The lineage codec: records and events survive the trip through protobuf unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelreg.errors import InvalidArgument
from modelreg.eventlog import GENESIS_HASH, EventContext, build_envelope
from modelreg.lineage.adapters import codec
from modelreg.lineage.domain.model import (
    CodeRef,
    Config,
    Dataset,
    DatasetRole,
    Environment,
    Evaluation,
    LineageRecord,
    LineageRecorded,
    LineageRecordSuperseded,
    ParentRelation,
    ParentVersion,
    PreprocessingStep,
    TrainingRun,
)

V = "namespaces/ns/models/m/versions/2"
SHA = "sha256:" + "c" * 64
FULL = LineageRecord(
    model_version=V,
    datasets=(Dataset("s3://d", SHA, "schema", 10, DatasetRole.VALIDATION),),
    preprocessing_steps=(PreprocessingStep("tok", SHA, "tokenize"),),
    code=(CodeRef("https://git/x", "abc", "train.py"),),
    config=Config((("epochs", "3"), ("lr", "0.1"))),
    environment=Environment("3.12", SHA, "img:1", "torch==2.4"),
    training_run=TrainingRun(
        "r", "kubeflow", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 2, 30, 0, 123000, tzinfo=UTC)
    ),
    parents=(ParentVersion("namespaces/ns/models/m/versions/1", ParentRelation.DISTILLED),),
    evaluations=(Evaluation("e", (("auc", 0.5), ("f1", 0.25))),),
)


def envelope(field: str, payload):  # type: ignore[no-untyped-def]
    return build_envelope(
        stream="namespaces/ns/models/m",
        payload_field=field,
        payload=payload,
        expected_revision=-1,
        prev_hash=GENESIS_HASH,
        source="test",
        context=EventContext(actor="a"),
    )


def test_a_full_record_round_trips() -> None:
    message = codec.record_to_proto(FULL)
    assert message.config.digest == FULL.config.digest  # type: ignore[union-attr]
    assert message.environment.digest == FULL.environment.digest  # type: ignore[union-attr]
    assert codec.record_from_proto(message, V) == FULL


def test_events_round_trip_through_the_envelope() -> None:
    for event in (
        LineageRecorded(FULL),
        LineageRecordSuperseded("0190f0e4-1234-7abc-8def-0123456789ab", FULL, "fix"),
    ):
        field, payload = codec.encode(event)
        assert codec.decode(envelope(field, payload)) == event


def test_unknown_enum_numbers_are_refused_naming_the_field() -> None:
    message = codec.record_to_proto(FULL)
    message.datasets[0].role = 42  # type: ignore[assignment]
    with pytest.raises(InvalidArgument) as error:
        codec.record_from_proto(message, V)
    assert [v.field for v in error.value.violations] == ["record.datasets[0].role"]
    message = codec.record_to_proto(FULL)
    message.parents[0].relation = 42  # type: ignore[assignment]
    with pytest.raises(InvalidArgument) as error:
        codec.record_from_proto(message, V)
    assert [v.field for v in error.value.violations] == ["record.parents[0].relation"]


def test_other_payloads_are_ignored() -> None:
    from modelreg.gen.promotion.v1 import events_pb2

    assert (
        codec.decode(envelope("pointer_moved", events_pb2.PointerMoved(model="m", pointer="p", version=1)))
        is None
    )

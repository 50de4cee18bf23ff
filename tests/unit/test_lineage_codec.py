"""The lineage codec and resources: records and events survive the trip through protobuf unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.message import Message

from modelreg.errors import InvalidArgument
from modelreg.eventlog import GENESIS_HASH, EventContext, build_envelope
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from modelreg.lineage import resources
from modelreg.lineage.adapters import codec
from modelreg.lineage.domain.events import LineageRecorded, LineageRecordSuperseded
from modelreg.lineage.domain.values import (
    CodeRef,
    Config,
    Dataset,
    DatasetRole,
    Environment,
    Evaluation,
    LineageRecord,
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


def envelope(field: str, payload: Message) -> Envelope:
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
    message = resources.record_to_proto(FULL)
    assert FULL.config is not None and FULL.environment is not None
    assert message.config.digest == FULL.config.digest
    assert message.environment.digest == FULL.environment.digest
    assert resources.record_from_proto(message, V) == FULL


def test_events_round_trip_through_the_envelope() -> None:
    for event in (
        LineageRecorded(FULL),
        LineageRecordSuperseded("0190f0e4-1234-7abc-8def-0123456789ab", FULL, "fix"),
    ):
        field, payload = codec.encode(event)
        assert codec.decode(envelope(field, payload)) == event


def test_unknown_enum_numbers_are_refused_naming_the_field() -> None:
    message = resources.record_to_proto(FULL)
    message.datasets[0].role = pb.DatasetRole.ValueType(42)
    with pytest.raises(InvalidArgument) as error:
        resources.record_from_proto(message, V)
    assert [v.field for v in error.value.violations] == ["record.datasets[0].role"]
    message = resources.record_to_proto(FULL)
    message.parents[0].relation = pb.ParentRelation.ValueType(42)
    with pytest.raises(InvalidArgument) as error:
        resources.record_from_proto(message, V)
    assert [v.field for v in error.value.violations] == ["record.parents[0].relation"]


def test_other_payloads_are_ignored() -> None:
    from modelreg.gen.promotion.v1 import events_pb2

    assert (
        codec.decode(envelope("pointer_moved", events_pb2.PointerMoved(model="m", pointer="p", version=1)))
        is None
    )

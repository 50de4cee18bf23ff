"""The promotion event codec round trip (roles and grants: tests/unit/test_access.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelreg.eventlog import EventContext, build_envelope, decode
from modelreg.eventlog.envelope import GENESIS_HASH
from modelreg.gen.promotion.v1 import events_pb2
from modelreg.promotion.adapters import codec
from modelreg.promotion.domain.events import (
    AccessDenied,
    Event,
    PointerChange,
    PolicySet,
    TransitionApplied,
    TransitionApproved,
    TransitionCancelled,
    TransitionRejected,
    TransitionRequested,
)
from modelreg.promotion.domain.state import Request
from modelreg.promotion.domain.values import (
    Approval,
    Check,
    CheckKind,
    Deployment,
    Move,
    Policy,
    RequestState,
    Weight,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MODEL = "namespaces/ns/models/m"


REQUEST = Request(
    name=f"{MODEL}/transitionRequests/abc",
    model=MODEL,
    moves=(Move("PRODUCTION", 7), Move("ARCHIVED", 6), Move("challenger", 8)),
    deployments=(Deployment("prod", (Weight(7, 90), Weight(8, 10))),),
    comment="why",
    requester="alice",
    required_approvals=2,
    separation_of_duties=True,
    checks=(Check(CheckKind.METRIC_THRESHOLD, "auc", ">=", 0.9), Check(CheckKind.SIGNATURE_PRESENT)),
    create_time=T0,
    update_time=T0,
    etag='W/"3"',
    rollback=True,
    rollback_reason="bad",
    emergency=True,
    protected_targets=("PRODUCTION", "deployments/prod"),
)


@pytest.mark.parametrize(
    "event",
    [
        TransitionRequested(REQUEST),
        TransitionApproved(REQUEST.name, Approval("bob", "ok", T0)),
        TransitionRejected(REQUEST.name, "no"),
        TransitionCancelled(REQUEST.name, "oops"),
        TransitionApplied(
            Request(**{**{f: getattr(REQUEST, f) for f in REQUEST.__slots__}, "state": RequestState.APPLIED}),
            (
                PointerChange("PRODUCTION", 7, 6),
                PointerChange("STAGING", 0, 7),
                PointerChange("challenger", 8, 0),
            ),
            (6,),
            (),
            (Deployment("prod", (Weight(7, 90), Weight(8, 10))),),
            (f"{MODEL}/transitionRequests/other",),
        ),
        PolicySet(
            MODEL, Policy(protected=("PRODUCTION", "champion"), required_approvals=2, emergency_rollback=True)
        ),
        AccessDenied("mallory", "ApproveTransitionRequest", REQUEST.name, "needs approver"),
    ],
)
def test_every_event_survives_the_log(event: Event) -> None:
    field, payload = codec.encode(event)
    envelope = build_envelope(
        stream=MODEL,
        payload_field=field,
        payload=payload,
        expected_revision=0,
        prev_hash=GENESIS_HASH,
        source="test",
        context=EventContext(actor="x"),
    )
    assert codec.decode(decode(envelope.SerializeToString())) == event


def test_applied_moves_are_visible_as_pointer_moved_and_removed() -> None:
    applied = TransitionApplied(
        REQUEST, (PointerChange("PRODUCTION", 7, 6), PointerChange("STAGING", 0, 7)), (), (), (), ()
    )
    _, payload = codec.encode(applied)
    assert isinstance(payload, events_pb2.TransitionApplied)
    assert [(m.model, m.pointer, m.version, m.previous) for m in payload.moved] == [
        (MODEL, "PRODUCTION", 7, 6)
    ]
    assert [(m.model, m.pointer, m.previous) for m in payload.removed] == [(MODEL, "STAGING", 7)]

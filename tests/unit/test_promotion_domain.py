"""The promotion aggregate, pure: policy matrix, planning, rollback, traffic splits."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from modelreg.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied
from modelreg.eventmeta import EventMeta
from modelreg.promotion.domain.commands import ApproveTransition, CancelTransition, CreateTransition
from modelreg.promotion.domain.decide import decide, rollback_moves
from modelreg.promotion.domain.events import Event, TransitionApplied, TransitionApproved, TransitionRequested
from modelreg.promotion.domain.evolve import evolve
from modelreg.promotion.domain.state import Aggregate, Pointers
from modelreg.promotion.domain.values import (
    DEFAULT_POLICY,
    Check,
    CheckKind,
    Deployment,
    Move,
    Policy,
    RequestState,
    VersionFacts,
    VersionStatus,
    Weight,
    check_moves,
)

MODEL = "namespaces/ns/models/m"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def facts(**overrides: VersionFacts) -> dict[int, VersionFacts]:
    base = {v: VersionFacts(v, VersionStatus.READY, {"auc": 0.8 + v / 100}, True, True) for v in range(1, 10)}
    base.update({int(k[1:]): f for k, f in overrides.items()})
    return base


def create(
    moves: Sequence[Move],
    actor: str = "alice",
    deployments: Sequence[Deployment] = (),
    policy: Policy = DEFAULT_POLICY,
    known: dict[int, VersionFacts] | None = None,
    **kw: Any,
) -> CreateTransition:
    """A CreateTransition under `policy`, with the facts `known` (default: every version READY)."""
    return CreateTransition(
        f"{MODEL}/transitionRequests/r{next(_ids)}",
        tuple(moves),
        tuple(deployments),
        "why",
        actor,
        T0,
        policy=policy,
        facts=facts() if known is None else known,
        **kw,
    )


_ids = itertools.count()


def fold(state: Aggregate, event: Event, actor: str = "x") -> Aggregate:
    return evolve(state, event, EventMeta(MODEL, T0, actor, 1))


def empty() -> Aggregate:
    return Aggregate(Pointers(MODEL))


def test_unprotected_move_applies_at_once() -> None:
    event = decide(empty(), create([Move("STAGING", 3)]))
    assert isinstance(event, TransitionApplied)
    state = fold(empty(), event)
    assert state.pointers.pointers == {"STAGING": 3}
    assert state.pointers.etag == 'W/"1"'


def test_multi_pointer_transition_is_one_plan() -> None:
    state = empty()
    state = fold(state, decide(state, create([Move("PRODUCTION", 6)], policy=Policy(protected=()))))
    state = fold(state, decide(state, create([Move("STAGING", 7)], policy=Policy(protected=()))))
    event = decide(
        state,
        create(
            [Move("PRODUCTION", 7), Move("ARCHIVED", 6), Move("challenger", 8)], policy=Policy(protected=())
        ),
    )
    assert isinstance(event, TransitionApplied)
    assert {(c.pointer, c.version, c.previous) for c in event.changes} == {
        ("PRODUCTION", 7, 6),
        ("STAGING", 0, 7),
        ("challenger", 8, 0),
    }
    assert event.archived == (6,)
    state = fold(state, event)
    assert state.pointers.pointers == {"PRODUCTION": 7, "challenger": 8}
    assert state.pointers.archived == {6}


# Policy matrix: approvals required x separation of duties x who approves x checks.
@pytest.mark.parametrize("required", [1, 2, 3])
@pytest.mark.parametrize("sod", [True, False])
@pytest.mark.parametrize("self_approves", [True, False])
@pytest.mark.parametrize("check_passes", [True, False, None])
def test_policy_matrix(required: int, sod: bool, self_approves: bool, check_passes: bool | None) -> None:
    checks = () if check_passes is None else (Check(CheckKind.METRIC_THRESHOLD, "auc", ">=", 0.85),)
    version = 7 if check_passes in (True, None) else 2  # auc 0.87 vs 0.82
    policy = Policy(required_approvals=required, separation_of_duties=sod, checks=checks)
    state = empty()
    command = create([Move("PRODUCTION", version)], actor="req", policy=policy)
    if check_passes is False:
        with pytest.raises(FailedPrecondition) as error:
            decide(state, command)
        assert "metrics.auc >= 0.85" in str(error.value) and "auc = 0.82" in str(error.value)
        return
    event = decide(state, command)
    assert isinstance(event, TransitionRequested)
    assert event.request.required_approvals == required
    state = fold(state, event)
    approvers = ["req"] if self_approves else []
    approvers += [f"a{i}" for i in range(required)]
    applied = False
    for i, approver in enumerate(approvers):
        approve = ApproveTransition(command.name, "ok", approver, T0, facts())
        if approver == "req" and sod:
            with pytest.raises(PermissionDenied, match="separation of duties"):
                decide(state, approve)
            continue
        outcome = decide(state, approve)
        counted = i + 1 if not (self_approves and sod) else i
        if counted >= required:
            assert isinstance(outcome, TransitionApplied)
            assert outcome.request.decided_by == approver
            assert len(outcome.request.approvals) == required
            applied = True
            state = fold(state, outcome)
            break
        assert isinstance(outcome, TransitionApproved)
        state = fold(state, outcome)
    assert applied
    assert state.pointers.pointers == {"PRODUCTION": version}
    assert state.requests[command.name].state is RequestState.APPLIED


def test_same_approver_twice_counts_once() -> None:
    state = empty()
    command = create([Move("PRODUCTION", 7)], policy=Policy(required_approvals=2))
    state = fold(state, decide(state, command))
    state = fold(state, decide(state, ApproveTransition(command.name, "", "bob", T0, facts())))
    with pytest.raises(FailedPrecondition, match="already approved"):
        decide(state, ApproveTransition(command.name, "", "bob", T0, facts()))


@pytest.mark.parametrize(
    ("check", "fact", "message"),
    [
        (Check(CheckKind.SIGNATURE_PRESENT), VersionFacts(7, VersionStatus.READY), "no signature"),
        (Check(CheckKind.LINEAGE_RECORDED), VersionFacts(7, VersionStatus.READY), "no lineage"),
        (Check(CheckKind.VERSION_READY), VersionFacts(7, VersionStatus.PENDING_UPLOAD), "PENDING_UPLOAD"),
        (
            Check(CheckKind.METRIC_THRESHOLD, "auc", ">=", 0.9),
            VersionFacts(7, VersionStatus.READY),
            "auc is not recorded",
        ),
        (Check(CheckKind.METRIC_THRESHOLD, "loss", "<", 0.1), None, "loss is not recorded"),
    ],
)
def test_each_check_names_itself_and_the_value(check: Check, fact: VersionFacts | None, message: str) -> None:
    known = facts(v7=fact) if fact else facts()
    with pytest.raises(FailedPrecondition) as error:
        decide(empty(), create([Move("PRODUCTION", 7)], policy=Policy(checks=(check,)), known=known))
    assert str(check) in str(error.value) and message in str(error.value)


def test_checks_apply_only_to_protected_pointers() -> None:
    policy = Policy(checks=(Check(CheckKind.METRIC_THRESHOLD, "auc", ">=", 0.99),))
    event = decide(empty(), create([Move("challenger", 2)], policy=policy))
    assert isinstance(event, TransitionApplied)


def test_checks_run_again_at_the_last_approval() -> None:
    policy = Policy(checks=(Check(CheckKind.VERSION_READY),))
    state = empty()
    command = create([Move("PRODUCTION", 7)], policy=policy)
    state = fold(state, decide(state, command))
    deprecated = facts(v7=VersionFacts(7, VersionStatus.DEPRECATED))
    with pytest.raises(FailedPrecondition, match="VERSION_READY failed for version 7: status is DEPRECATED"):
        decide(state, ApproveTransition(command.name, "", "bob", T0, deprecated))


@pytest.mark.parametrize("status", [None, VersionStatus.DELETED])
def test_missing_or_deleted_versions_are_refused(status: VersionStatus | None) -> None:
    known = facts()
    if status is None:
        del known[7]
    else:
        known[7] = VersionFacts(7, status)
    with pytest.raises(FailedPrecondition, match="versions/7"):
        decide(empty(), create([Move("challenger", 7)], policy=Policy(), known=known))


def test_stale_etag_is_aborted() -> None:
    state = fold(empty(), decide(empty(), create([Move("STAGING", 1)])))
    with pytest.raises(Aborted):
        decide(state, create([Move("STAGING", 2)], etag='W/"0"'))
    assert decide(state, create([Move("STAGING", 2)], etag='W/"1"'))


def test_applying_supersedes_pending_requests_on_the_same_pointer() -> None:
    state = empty()
    a, b = create([Move("PRODUCTION", 7)]), create([Move("PRODUCTION", 8)])
    c = create([Move("champion", 3)], policy=Policy(protected=("*",)))
    state = fold(state, decide(state, a))
    state = fold(state, decide(state, b))
    state = fold(state, decide(state, c))
    applied = decide(state, ApproveTransition(a.name, "", "bob", T0, facts()))
    assert isinstance(applied, TransitionApplied) and applied.superseded == (b.name,)
    state = fold(state, applied)
    assert state.requests[b.name].state is RequestState.SUPERSEDED
    assert state.requests[c.name].state is RequestState.PENDING
    with pytest.raises(FailedPrecondition, match="SUPERSEDED"):
        decide(state, ApproveTransition(b.name, "", "bob", T0, facts()))


def test_rollback_returns_to_exactly_the_previous_version() -> None:
    state = empty()
    for version in (3, 5, 7):
        state = fold(state, decide(state, create([Move("PRODUCTION", version)], policy=Policy(protected=()))))
    assert rollback_moves(state, "PRODUCTION") == (Move("PRODUCTION", 5),)
    event = decide(
        state,
        create(
            list(rollback_moves(state, "PRODUCTION")),
            rollback=True,
            rollback_reason="bad",
            policy=Policy(protected=()),
        ),
    )
    state = fold(state, event)
    assert state.pointers.pointers["PRODUCTION"] == 5
    with pytest.raises(FailedPrecondition, match="no previous"):
        rollback_moves(empty(), "PRODUCTION")


@pytest.mark.parametrize(("allowed", "required"), [(True, 1), (False, None)])
def test_emergency_rollback_needs_a_single_approver(allowed: bool, required: int | None) -> None:
    policy = Policy(required_approvals=3, emergency_rollback=allowed)
    command = create(
        [Move("PRODUCTION", 2)], rollback=True, rollback_reason="outage", emergency=True, policy=policy
    )
    if required is None:
        with pytest.raises(FailedPrecondition, match="emergency"):
            decide(empty(), command)
        return
    event = decide(empty(), command)
    assert isinstance(event, TransitionRequested) and event.request.required_approvals == required


@pytest.mark.parametrize(
    ("weights", "error"),
    [
        ([Weight(7, 90), Weight(8, 10)], None),
        ([Weight(7, 100)], None),
        ([Weight(7, 90), Weight(8, 20)], "add up to 110"),
        ([Weight(7, 90)], "add up to 90"),
        ([Weight(7, 0), Weight(8, 100)], "1-100"),
        ([Weight(7, 50), Weight(7, 50)], "appears twice"),
        ([Weight(0, 100)], ">= 1"),
    ],
)
def test_traffic_split_validation(weights: list[Weight], error: str | None) -> None:
    deployments = [Deployment("prod", tuple(weights))]
    if error:
        with pytest.raises(InvalidArgument, match=error):
            check_moves([], deployments, "transition_request")
    else:
        check_moves([], deployments, "transition_request")


def test_traffic_split_versions_must_be_ready() -> None:
    known = facts(v8=VersionFacts(8, VersionStatus.DEPRECATED))
    deployment = Deployment("prod", (Weight(7, 90), Weight(8, 10)))
    with pytest.raises(FailedPrecondition, match="version 8 is DEPRECATED"):
        decide(empty(), create([], deployments=[deployment], policy=Policy(protected=()), known=known))


def test_deployment_changes_are_governed() -> None:
    deployment = Deployment("prod", (Weight(7, 90), Weight(8, 10)))
    event = decide(empty(), create([], deployments=[deployment]))
    assert isinstance(event, TransitionRequested)
    assert event.request.protected_targets == ("deployments/prod",)


def test_cancel_only_by_requester_or_admin() -> None:
    state = empty()
    command = create([Move("PRODUCTION", 7)], actor="req")
    state = fold(state, decide(state, command))
    with pytest.raises(PermissionDenied):
        decide(state, CancelTransition(command.name, "", "other", T0))
    assert decide(state, CancelTransition(command.name, "", "other", T0, is_admin=True))
    assert decide(state, CancelTransition(command.name, "", "req", T0))


@pytest.mark.parametrize(
    "moves",
    [
        [Move("PRODUCTION", 1), Move("PRODUCTION", 2)],
        [Move("PRODUCTION", 1), Move("ARCHIVED", 1)],
        [Move("ARCHIVED", 0)],
        [Move("champion", -1)],
        [],
    ],
)
def test_contradictory_moves_are_invalid(moves: list[Move]) -> None:
    with pytest.raises(InvalidArgument):
        check_moves(moves, [], "transition_request")

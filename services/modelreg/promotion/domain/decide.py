"""The promotion decision: a command, against the model's aggregate, to exactly one event (a transition
that moves several pointers is one event, so it is atomic)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import assert_never

from modelreg.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied
from modelreg.promotion.domain.commands import (
    ApproveTransition,
    CancelTransition,
    Command,
    CreateTransition,
    RejectTransition,
    ReportDeployment,
    SetPolicy,
)
from modelreg.promotion.domain.events import (
    DeploymentReported,
    Event,
    PolicySet,
    TransitionApplied,
    TransitionApproved,
    TransitionCancelled,
    TransitionRejected,
    TransitionRequested,
)
from modelreg.promotion.domain.queries import Plan, checked_versions, plan, referenced_versions
from modelreg.promotion.domain.state import Aggregate, Request
from modelreg.promotion.domain.values import (
    COMPARISONS,
    NOTHING_CHANGES,
    STAGE_POINTERS,
    Approval,
    Check,
    CheckKind,
    Deployment,
    Move,
    Policy,
    RequestState,
    VersionFacts,
    VersionStatus,
    check_policy,
)


def decide(state: Aggregate | None, command: Command) -> Event:
    """The event `command` makes, or the domain error refusing it. `state` is the model's aggregate;
    None when it was not read: a policy is a fact appended whatever the stream holds."""
    match command:
        case CreateTransition():
            return _decide_create(_read(state), command)
        case ApproveTransition():
            return _decide_approve(_read(state), command)
        case RejectTransition():
            _pending(_read(state), command.name)
            return TransitionRejected(command.name, command.comment)
        case CancelTransition():
            return _decide_cancel(_read(state), command)
        case SetPolicy():
            check_policy(command.policy)
            return PolicySet(command.parent, command.policy)
        case ReportDeployment():
            return _decide_report(_read(state), command)
        case _:
            assert_never(command)


def _read(state: Aggregate | None) -> Aggregate:
    if state is None:
        raise TypeError("a transition is decided on the model's aggregate")
    return state


def _check_versions(
    model: str, moves: Sequence[Move], deployments: Sequence[Deployment], facts: Mapping[int, VersionFacts]
) -> None:
    """Always required, whatever the policy: versions exist and are not deleted; splits are READY."""
    for version in sorted(referenced_versions(moves, deployments)):
        fact = facts.get(version)
        if fact is None:
            raise FailedPrecondition(f"{model}/versions/{version} does not exist")
        if fact.status is VersionStatus.DELETED:
            raise FailedPrecondition(f"{model}/versions/{version} is deleted")
    for deployment in deployments:
        for weight in deployment.weights:
            status = facts[weight.version].status
            if status is not VersionStatus.READY:
                raise FailedPrecondition(
                    f"deployment {deployment.environment}: version {weight.version} is {status.value}, "
                    "every version of a traffic split must be READY"
                )


def _recent_evaluation(check: Check, version: int, fact: VersionFacts, now: datetime) -> str | None:
    """Why the version's newest evaluation on the check's dataset does not pass it; None when it does."""
    on = [
        e
        for e in fact.evaluations
        if e.dataset_uri == check.dataset_uri
        and (not check.dataset_digest or e.dataset_digest == check.dataset_digest)
    ]
    if not on:
        return f"{check} failed for version {version}: no evaluation on {check.dataset_uri} recorded"
    newest = max(on, key=lambda e: e.evaluate_time)
    age = (now - newest.evaluate_time).total_seconds()
    when = newest.evaluate_time.isoformat()
    failed = f"{check} failed for version {version}"
    if check.max_age_s and age > check.max_age_s:
        return f"{failed}: the newest evaluation on it is from {when}, {age / 86400:.1f} days old"
    value = newest.metrics.get(check.metric)
    if value is None:
        return f"{failed}: the newest evaluation on it ({when}) has no {check.metric}"
    if not COMPARISONS[check.comparison](value, check.threshold):
        return f"{failed}: {check.metric} = {value:g} in the evaluation of {when}"
    return None


def evaluate_checks(
    checks: Sequence[Check], versions: Sequence[int], facts: Mapping[int, VersionFacts], now: datetime
) -> list[str]:
    """Each failure names the check, the version and the values found; `now` is the decision's time
    (how old an evaluation is)."""
    failures: list[str] = []
    for version in versions:
        fact = facts.get(version)
        if fact is None:
            failures.append(f"version {version}: no facts recorded")
            continue
        for check in checks:
            match check.kind:
                case CheckKind.VERSION_READY:
                    if fact.status is not VersionStatus.READY:
                        failures.append(
                            f"{check} failed for version {version}: status is {fact.status.value}"
                        )
                case CheckKind.SIGNATURE_PRESENT:
                    if not fact.has_signature:
                        failures.append(f"{check} failed for version {version}: no signature recorded")
                case CheckKind.LINEAGE_RECORDED:
                    if not fact.lineage_recorded:
                        failures.append(f"{check} failed for version {version}: no lineage recorded")
                case CheckKind.METRIC_THRESHOLD:
                    value = fact.metrics.get(check.metric)
                    if value is None:
                        failures.append(
                            f"{check} failed for version {version}: metric {check.metric} is not recorded"
                        )
                    elif not COMPARISONS[check.comparison](value, check.threshold):
                        failures.append(f"{check} failed for version {version}: {check.metric} = {value:g}")
                case CheckKind.RECENT_EVALUATION:
                    failure = _recent_evaluation(check, version, fact, now)
                    if failure is not None:
                        failures.append(failure)
    return failures


def _protected(the_plan: Plan, policy: Policy) -> frozenset[str]:
    return frozenset(t for t in the_plan.changed_targets if policy.protects(t))


def _apply(
    state: Aggregate, request: Request, facts: Mapping[int, VersionFacts], actor: str, comment: str
) -> TransitionApplied:
    the_plan = plan(state.pointers, request.moves, request.deployments)
    if the_plan.empty:
        raise FailedPrecondition(NOTHING_CHANGES)
    _check_versions(request.model, request.moves, request.deployments, facts)
    final = replace(request, state=RequestState.APPLIED, decided_by=actor, decision_comment=comment)
    changed = the_plan.changed_targets
    superseded = tuple(
        sorted(
            name
            for name, other in state.requests.items()
            if name != request.name and other.state is RequestState.PENDING and other.targets & changed
        )
    )
    return TransitionApplied(
        final, the_plan.changes, the_plan.archived, the_plan.unarchived, the_plan.deployments, superseded
    )


def _decide_create(state: Aggregate, command: CreateTransition) -> TransitionRequested | TransitionApplied:
    policy, facts = command.policy, command.facts
    if command.etag and command.etag != state.pointers.etag:
        raise Aborted(
            f"the pointers of {state.pointers.model} changed: etag is {state.pointers.etag}, "
            f"not {command.etag}; read them again and retry"
        )
    if command.name in state.requests:
        raise Aborted(f"{command.name} already exists")
    the_plan = plan(state.pointers, command.moves, command.deployments)
    if the_plan.empty:
        raise FailedPrecondition(NOTHING_CHANGES)
    _check_versions(state.pointers.model, command.moves, command.deployments, facts)
    protected = _protected(the_plan, policy)
    required = policy.required_approvals if protected else 0
    if command.emergency:
        if not command.rollback:
            raise InvalidArgument.of("emergency", "only a rollback can be an emergency")
        if not policy.emergency_rollback:
            raise FailedPrecondition("the promotion policy does not allow emergency rollback")
        required = min(required, 1)
    # Checks apply to what protected pointers are made to name; failing early
    # spares approvers a request that could never apply.
    failures = evaluate_checks(policy.checks, checked_versions(the_plan, protected), facts, command.at)
    if failures:
        raise FailedPrecondition("required checks failed: " + "; ".join(failures))
    request = Request(
        name=command.name,
        model=state.pointers.model,
        moves=command.moves,
        deployments=command.deployments,
        comment=command.comment,
        requester=command.actor,
        required_approvals=required,
        separation_of_duties=policy.separation_of_duties,
        checks=policy.checks if protected else (),
        create_time=command.at,
        update_time=command.at,
        etag=state.pointers.etag,
        rollback=command.rollback,
        rollback_reason=command.rollback_reason,
        emergency=command.emergency,
        protected_targets=tuple(sorted(protected)),
    )
    if required == 0:
        return _apply(state, request, facts, command.actor, command.comment)
    return TransitionRequested(request)


def _pending(state: Aggregate, name: str) -> Request:
    request = state.requests.get(name)
    if request is None:
        # The aggregate holds the pending requests only; the use case has
        # already told a missing request (NOT_FOUND) from a decided one.
        raise FailedPrecondition(f"{name} is no longer PENDING")
    if request.state is not RequestState.PENDING:
        raise FailedPrecondition(f"{name} is {request.state.value}, not PENDING")
    return request


def _decide_approve(state: Aggregate, command: ApproveTransition) -> TransitionApproved | TransitionApplied:
    facts = command.facts
    request = _pending(state, command.name)
    if request.separation_of_duties and command.actor == request.requester:
        raise PermissionDenied(
            f"separation of duties: {command.actor} requested {command.name} and cannot approve it"
        )
    if any(a.approver == command.actor for a in request.approvals):
        raise FailedPrecondition(f"{command.actor} already approved {command.name}")
    approval = Approval(command.actor, command.comment, command.at)
    if len(request.approvals) + 1 < request.required_approvals:
        return TransitionApproved(command.name, approval)
    # The facts may have changed since the request was made (a version
    # deprecated, deleted): the checks are evaluated again at the last approval.
    the_plan = plan(state.pointers, request.moves, request.deployments)
    failures = evaluate_checks(
        request.checks, checked_versions(the_plan, frozenset(request.protected_targets)), facts, command.at
    )
    if failures:
        raise FailedPrecondition("required checks failed: " + "; ".join(failures))
    approved = replace(request, approvals=(*request.approvals, approval), update_time=command.at)
    return _apply(state, approved, facts, command.actor, command.comment)


def _decide_cancel(state: Aggregate, command: CancelTransition) -> TransitionCancelled:
    request = _pending(state, command.name)
    if command.actor != request.requester and not command.is_admin:
        raise PermissionDenied(
            f"only the requester ({request.requester}) or an admin can cancel {command.name}"
        )
    return TransitionCancelled(command.name, command.comment)


def _decide_report(state: Aggregate, command: ReportDeployment) -> DeploymentReported:
    """A report names an environment the model has (or had) and a revision it reached; a version-only
    report names a version."""
    report = command.report
    current = state.pointers.deployments.get(report.environment)
    if current is None:
        raise FailedPrecondition(f"{state.pointers.model} has no deployment {report.environment}")
    if report.revision > current.revision:
        raise FailedPrecondition(
            f"deployment {report.environment} of {state.pointers.model} is at revision {current.revision}; "
            f"revision {report.revision} does not exist"
        )
    return DeploymentReported(report)


def rollback_moves(state: Aggregate, stage: str) -> tuple[Move, ...]:
    """Back to the version the stage named before its latest move."""
    if stage not in STAGE_POINTERS:
        raise InvalidArgument.of("stage", f"{stage!r} must be one of {', '.join(STAGE_POINTERS)}")
    previous = state.pointers.previous.get(stage, 0)
    if not previous:
        raise FailedPrecondition(f"{stage} of {state.pointers.model} has no previous version to return to")
    return (Move(stage, previous),)

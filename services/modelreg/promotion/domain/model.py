"""The promotion aggregate: one per model, holding all of its pointers.

Because every stage pointer, alias and deployment of a model lives in one
aggregate (one stream), a transition that moves several of them is one event,
so readers see all of it or none of it.

Pure: decide(state, command, ...) -> event and evolve(state, event, meta) ->
state. Time, the actor, the effective policy and the facts about versions are
inputs, so the same inputs always give the same decision.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum, StrEnum

from modelreg.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied
from modelreg.eventmeta import EventMeta

STAGING = "STAGING"
PRODUCTION = "PRODUCTION"
ARCHIVED = "ARCHIVED"
NONE = "NONE"
STAGE_POINTERS = (STAGING, PRODUCTION)
"""Stages that name at most one version each; ARCHIVED holds any number and NONE is the absence."""
STAGE_TARGETS = (STAGING, PRODUCTION, ARCHIVED, NONE)
DEPLOYMENT_PREFIX = "deployments/"
DEFAULT_PROTECTED = (PRODUCTION, "deployments/*")
NOTHING_CHANGES = "the transition changes nothing: every pointer already is where it would move"
MAX_MOVES = 32
MAX_DEPLOYMENTS = 16
MAX_WEIGHTS = 16
MAX_COMMENT_BYTES = 4096


class Role(IntEnum):
    """Roles per namespace; each includes the ones below it."""

    VIEWER = 1
    EDITOR = 2
    APPROVER = 3
    ADMIN = 4


class RequestState(StrEnum):
    PENDING = "PENDING"
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    SUPERSEDED = "SUPERSEDED"


class VersionStatus(StrEnum):
    PENDING_UPLOAD = "PENDING_UPLOAD"
    READY = "READY"
    DEPRECATED = "DEPRECATED"
    DELETED = "DELETED"


class CheckKind(StrEnum):
    VERSION_READY = "VERSION_READY"
    SIGNATURE_PRESENT = "SIGNATURE_PRESENT"
    LINEAGE_RECORDED = "LINEAGE_RECORDED"
    METRIC_THRESHOLD = "METRIC_THRESHOLD"


COMPARISONS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}


@dataclass(frozen=True, slots=True)
class Check:
    kind: CheckKind
    metric: str = ""
    comparison: str = ""
    threshold: float = 0.0

    def __str__(self) -> str:
        if self.kind is CheckKind.METRIC_THRESHOLD:
            return f"metrics.{self.metric} {self.comparison} {self.threshold:g}"
        return self.kind.value


@dataclass(frozen=True, slots=True)
class Policy:
    protected: tuple[str, ...] = DEFAULT_PROTECTED
    required_approvals: int = 1
    separation_of_duties: bool = True
    checks: tuple[Check, ...] = ()
    emergency_rollback: bool = False

    def protects(self, target: str) -> bool:
        return any(fnmatch.fnmatchcase(target, pattern) for pattern in self.protected)


DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """What the reference caches know about a version; only used to validate."""

    version: int
    status: VersionStatus
    metrics: Mapping[str, float] = field(default_factory=dict)
    has_signature: bool = False
    lineage_recorded: bool = False


@dataclass(frozen=True, slots=True)
class Move:
    pointer: str
    version: int


@dataclass(frozen=True, slots=True)
class Weight:
    version: int
    percent: int


@dataclass(frozen=True, slots=True)
class Deployment:
    environment: str
    weights: tuple[Weight, ...]
    """Empty: the environment is removed."""


@dataclass(frozen=True, slots=True)
class Approval:
    approver: str
    comment: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Request:
    name: str
    model: str
    moves: tuple[Move, ...]
    deployments: tuple[Deployment, ...]
    comment: str
    requester: str
    required_approvals: int
    separation_of_duties: bool
    checks: tuple[Check, ...]
    """The policy's checks in force at creation; evaluated again when applied."""
    create_time: datetime
    etag: str
    rollback: bool = False
    rollback_reason: str = ""
    emergency: bool = False
    protected_targets: tuple[str, ...] = ()
    """The protected pointers and environments it changes, as the policy said at creation."""
    state: RequestState = RequestState.PENDING
    approvals: tuple[Approval, ...] = ()
    decided_by: str = ""
    decision_comment: str = ""
    update_time: datetime | None = None

    @property
    def targets(self) -> frozenset[str]:
        """The pointers and deployments it names; another transition changing one supersedes it."""
        named = {m.pointer for m in self.moves if m.pointer not in (ARCHIVED, NONE)}
        return frozenset(named | {DEPLOYMENT_PREFIX + d.environment for d in self.deployments})


@dataclass(frozen=True, slots=True)
class Pointers:
    model: str
    pointers: Mapping[str, int] = field(default_factory=dict)
    """STAGING, PRODUCTION and aliases -> version."""
    archived: frozenset[int] = frozenset()
    deployments: Mapping[str, tuple[Weight, ...]] = field(default_factory=dict)
    previous: Mapping[str, int] = field(default_factory=dict)
    """For each pointer, the version it named before its latest move (0 = unset): what rollback restores."""
    applied: int = 0
    """Number of applied transitions: the etag."""

    @property
    def etag(self) -> str:
        return f'W/"{self.applied}"'


@dataclass(frozen=True, slots=True)
class Aggregate:
    pointers: Pointers
    requests: Mapping[str, Request] = field(default_factory=dict)
    """The pending requests (and any other the caller loaded), by name."""


# Events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointerChange:
    pointer: str
    version: int
    """0: the pointer was unset."""
    previous: int


@dataclass(frozen=True, slots=True)
class TransitionRequested:
    request: Request


@dataclass(frozen=True, slots=True)
class TransitionApproved:
    name: str
    approval: Approval


@dataclass(frozen=True, slots=True)
class TransitionRejected:
    name: str
    comment: str


@dataclass(frozen=True, slots=True)
class TransitionCancelled:
    name: str
    comment: str


@dataclass(frozen=True, slots=True)
class TransitionApplied:
    request: Request
    """In its final state: APPLIED, every approval, decided_by = who applied it."""
    changes: tuple[PointerChange, ...]
    archived: tuple[int, ...]
    unarchived: tuple[int, ...]
    deployments: tuple[Deployment, ...]
    superseded: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PolicySet:
    parent: str
    policy: Policy


@dataclass(frozen=True, slots=True)
class AccessDenied:
    principal: str
    action: str
    resource: str
    reason: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One applied transition, as the history of the pointers and WatchPromotions show it."""

    model: str
    transition_request: str
    changes: tuple[PointerChange, ...]
    deployments: tuple[Deployment, ...]
    requester: str
    comment: str
    applied_by: str
    approvals: tuple[Approval, ...]
    rollback: bool
    rollback_reason: str
    apply_time: datetime
    etag: str
    """Of the pointers after the transition."""


def history_entry(event: TransitionApplied, pointers: Pointers, meta: EventMeta) -> HistoryEntry:
    """The entry of an applied transition; `pointers` are the model's pointers after it."""
    request = event.request
    return HistoryEntry(
        model=request.model,
        transition_request=request.name,
        changes=event.changes,
        deployments=event.deployments,
        requester=request.requester,
        comment=request.comment,
        applied_by=meta.actor,
        approvals=request.approvals,
        rollback=request.rollback,
        rollback_reason=request.rollback_reason,
        apply_time=meta.occurred_at,
        etag=pointers.etag,
    )


PromotionEvent = (
    TransitionRequested
    | TransitionApproved
    | TransitionRejected
    | TransitionCancelled
    | TransitionApplied
    | PolicySet
    | AccessDenied
)


# Commands -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateTransition:
    name: str
    """The new request's resource name (chosen by the caller, so a retry keeps it)."""
    moves: tuple[Move, ...]
    deployments: tuple[Deployment, ...]
    comment: str
    actor: str
    at: datetime
    etag: str = ""
    rollback: bool = False
    rollback_reason: str = ""
    emergency: bool = False


@dataclass(frozen=True, slots=True)
class Decide:
    """Approve, reject or cancel one request."""

    name: str
    comment: str
    actor: str
    at: datetime
    is_admin: bool = False


# Validation -----------------------------------------------------------------


def validate_moves(moves: Sequence[Move], deployments: Sequence[Deployment], field_: str) -> None:
    """Shape checks that need no state; the api has already checked names."""
    if not moves and not deployments:
        raise InvalidArgument.of(f"{field_}.moves", "a transition moves at least one pointer or deployment")
    if len(moves) > MAX_MOVES:
        raise InvalidArgument.of(f"{field_}.moves", f"at most {MAX_MOVES} moves")
    if len(deployments) > MAX_DEPLOYMENTS:
        raise InvalidArgument.of(f"{field_}.deployments", f"at most {MAX_DEPLOYMENTS} environments")
    seen: set[str] = set()
    staged: set[int] = set()
    for i, move in enumerate(moves):
        where = f"{field_}.moves[{i}]"
        if move.version < 0:
            raise InvalidArgument.of(f"{where}.version", "must be >= 0")
        if move.pointer in (ARCHIVED, NONE):
            if move.version == 0:
                raise InvalidArgument.of(f"{where}.version", f"{move.pointer} needs a version")
        elif move.pointer in seen:
            raise InvalidArgument.of(f"{where}.pointer", f"{move.pointer} is moved twice")
        seen.add(move.pointer)
        if move.pointer in STAGE_TARGETS and move.version:
            # A version is in one stage; two stage moves of it would contradict each other.
            if move.version in staged:
                raise InvalidArgument.of(f"{where}.version", f"version {move.version} is staged twice")
            staged.add(move.version)
    environments: set[str] = set()
    for i, deployment in enumerate(deployments):
        where = f"{field_}.deployments[{i}]"
        if deployment.environment in environments:
            raise InvalidArgument.of(f"{where}.environment", f"{deployment.environment} appears twice")
        environments.add(deployment.environment)
        validate_weights(deployment.weights, f"{where}.weights")


def validate_weights(weights: Sequence[Weight], field_: str) -> None:
    if not weights:
        return
    if len(weights) > MAX_WEIGHTS:
        raise InvalidArgument.of(field_, f"at most {MAX_WEIGHTS} versions")
    versions: set[int] = set()
    for i, weight in enumerate(weights):
        if weight.version <= 0:
            raise InvalidArgument.of(f"{field_}[{i}].version", "must be a version number >= 1")
        if weight.version in versions:
            raise InvalidArgument.of(f"{field_}[{i}].version", f"version {weight.version} appears twice")
        versions.add(weight.version)
        if not 1 <= weight.percent <= 100:
            raise InvalidArgument.of(f"{field_}[{i}].percent", f"is {weight.percent}, must be 1-100")
    total = sum(w.percent for w in weights)
    if total != 100:
        raise InvalidArgument.of(field_, f"weights add up to {total}, they must add up to 100")


def validate_policy(policy: Policy, field_: str = "policy") -> None:
    if policy.required_approvals < 1:
        raise InvalidArgument.of(f"{field_}.required_approvals", "must be at least 1")
    if policy.required_approvals > 16:
        raise InvalidArgument.of(f"{field_}.required_approvals", "at most 16")
    if len(policy.protected) > 64:
        raise InvalidArgument.of(f"{field_}.protected", "at most 64 patterns")
    for i, check in enumerate(policy.checks):
        if check.kind is CheckKind.METRIC_THRESHOLD:
            if not check.metric:
                raise InvalidArgument.of(f"{field_}.required_checks[{i}].metric", "is required")
            if check.comparison not in COMPARISONS:
                raise InvalidArgument.of(f"{field_}.required_checks[{i}].comparison", "is required")


# Planning a transition --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    changes: tuple[PointerChange, ...]
    archived: tuple[int, ...]
    unarchived: tuple[int, ...]
    deployments: tuple[Deployment, ...]

    @property
    def changed_targets(self) -> frozenset[str]:
        return frozenset(
            {c.pointer for c in self.changes} | {DEPLOYMENT_PREFIX + d.environment for d in self.deployments}
        )

    @property
    def empty(self) -> bool:
        return not (self.changes or self.archived or self.unarchived or self.deployments)


def plan(pointers: Pointers, moves: Sequence[Move], deployments: Sequence[Deployment]) -> Plan:
    """The exact effect of the moves on the current pointers, in order."""
    current = dict(pointers.pointers)
    archived = set(pointers.archived)

    def leave_stages(version: int) -> None:
        for stage in STAGE_POINTERS:
            if current.get(stage) == version:
                del current[stage]

    for move in moves:
        if move.pointer in STAGE_POINTERS:
            if move.version == 0:
                current.pop(move.pointer, None)
                continue
            leave_stages(move.version)
            current[move.pointer] = move.version
            archived.discard(move.version)
        elif move.pointer == ARCHIVED:
            leave_stages(move.version)
            archived.add(move.version)
        elif move.pointer == NONE:
            leave_stages(move.version)
            archived.discard(move.version)
        elif move.version == 0:
            current.pop(move.pointer, None)
        else:
            current[move.pointer] = move.version
    changes = tuple(
        PointerChange(name, current.get(name, 0), pointers.pointers.get(name, 0))
        for name in sorted(set(current) | set(pointers.pointers))
        if current.get(name, 0) != pointers.pointers.get(name, 0)
    )
    changed_deployments = tuple(
        d for d in deployments if tuple(d.weights) != tuple(pointers.deployments.get(d.environment, ()))
    )
    return Plan(
        changes,
        tuple(sorted(archived - pointers.archived)),
        tuple(sorted(pointers.archived - archived)),
        changed_deployments,
    )


def referenced_versions(moves: Sequence[Move], deployments: Sequence[Deployment]) -> set[int]:
    return {m.version for m in moves if m.version} | {w.version for d in deployments for w in d.weights}


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


def checked_versions(the_plan: Plan, protected: frozenset[str]) -> list[int]:
    """Versions that protected pointers and environments are made to name."""
    versions = {c.version for c in the_plan.changes if c.version and c.pointer in protected}
    for deployment in the_plan.deployments:
        if DEPLOYMENT_PREFIX + deployment.environment in protected:
            versions |= {w.version for w in deployment.weights}
    return sorted(versions)


def evaluate_checks(
    checks: Sequence[Check], versions: Sequence[int], facts: Mapping[int, VersionFacts]
) -> list[str]:
    """Each failure names the check, the version and the values found."""
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
    return failures


# Decide ---------------------------------------------------------------------


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


def decide_create(
    state: Aggregate, command: CreateTransition, policy: Policy, facts: Mapping[int, VersionFacts]
) -> TransitionRequested | TransitionApplied:
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
    failures = evaluate_checks(policy.checks, checked_versions(the_plan, protected), facts)
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


def decide_approve(
    state: Aggregate, command: Decide, facts: Mapping[int, VersionFacts]
) -> TransitionApproved | TransitionApplied:
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
        request.checks, checked_versions(the_plan, frozenset(request.protected_targets)), facts
    )
    if failures:
        raise FailedPrecondition("required checks failed: " + "; ".join(failures))
    approved = replace(request, approvals=(*request.approvals, approval), update_time=command.at)
    return _apply(state, approved, facts, command.actor, command.comment)


def decide_reject(state: Aggregate, command: Decide) -> TransitionRejected:
    _pending(state, command.name)
    return TransitionRejected(command.name, command.comment)


def decide_cancel(state: Aggregate, command: Decide) -> TransitionCancelled:
    request = _pending(state, command.name)
    if command.actor != request.requester and not command.is_admin:
        raise PermissionDenied(
            f"only the requester ({request.requester}) or an admin can cancel {command.name}"
        )
    return TransitionCancelled(command.name, command.comment)


def rollback_moves(state: Aggregate, stage: str) -> tuple[Move, ...]:
    """Back to the version the stage named before its latest move."""
    if stage not in STAGE_POINTERS:
        raise InvalidArgument.of("stage", f"{stage!r} must be one of {', '.join(STAGE_POINTERS)}")
    previous = state.pointers.previous.get(stage, 0)
    if not previous:
        raise FailedPrecondition(f"{stage} of {state.pointers.model} has no previous version to return to")
    return (Move(stage, previous),)


def decide_policy(parent: str, policy: Policy) -> PolicySet:
    validate_policy(policy)
    return PolicySet(parent, policy)


# Evolve ---------------------------------------------------------------------


def evolve(state: Aggregate, event: PromotionEvent, meta: EventMeta) -> Aggregate:
    requests = dict(state.requests)
    match event:
        case TransitionRequested(request=request):
            requests[request.name] = replace(
                request, create_time=meta.occurred_at, update_time=meta.occurred_at
            )
            return replace(state, requests=requests)
        case TransitionApproved(name=name, approval=approval):
            if name in requests:
                r = requests[name]
                requests[name] = replace(r, approvals=(*r.approvals, approval), update_time=meta.occurred_at)
            return replace(state, requests=requests)
        case TransitionRejected(name=name, comment=comment) | TransitionCancelled(name=name, comment=comment):
            kind = RequestState.REJECTED if isinstance(event, TransitionRejected) else RequestState.CANCELLED
            if name in requests:
                requests[name] = replace(
                    requests[name],
                    state=kind,
                    decided_by=meta.actor,
                    decision_comment=comment,
                    update_time=meta.occurred_at,
                )
            return replace(state, requests=requests)
        case TransitionApplied():
            previous = requests.get(event.request.name)
            create_time = previous.create_time if previous else meta.occurred_at
            requests[event.request.name] = replace(
                event.request, create_time=create_time, update_time=meta.occurred_at
            )
            for name in event.superseded:
                if name in requests:
                    requests[name] = replace(
                        requests[name], state=RequestState.SUPERSEDED, update_time=meta.occurred_at
                    )
            return replace(state, pointers=apply_changes(state.pointers, event), requests=requests)
    return state


def apply_changes(pointers: Pointers, event: TransitionApplied) -> Pointers:
    current = dict(pointers.pointers)
    previous = dict(pointers.previous)
    for change in event.changes:
        previous[change.pointer] = change.previous
        if change.version:
            current[change.pointer] = change.version
        else:
            current.pop(change.pointer, None)
    deployments = dict(pointers.deployments)
    for deployment in event.deployments:
        if deployment.weights:
            deployments[deployment.environment] = deployment.weights
        else:
            deployments.pop(deployment.environment, None)
    archived = (pointers.archived | set(event.archived)) - set(event.unarchived)
    return Pointers(pointers.model, current, frozenset(archived), deployments, previous, pointers.applied + 1)

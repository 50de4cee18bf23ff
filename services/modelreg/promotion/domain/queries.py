"""Pure reading of the pointers: what a transition would change (its plan), which versions it names and
which of them the checks apply to, and the history entry of an applied transition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from modelreg.eventmeta import EventMeta
from modelreg.promotion.domain.events import PointerChange, TransitionApplied
from modelreg.promotion.domain.state import Pointers, Request
from modelreg.promotion.domain.values import (
    ARCHIVED,
    DEPLOYMENT_PREFIX,
    NONE,
    STAGE_POINTERS,
    Approval,
    Deployment,
    Move,
    Report,
    ReportState,
)


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
        replace(d, revision=_revision_of(pointers, d.environment) + 1)
        for d in deployments
        if d.spec != _spec_of(pointers, d.environment)
    )
    return Plan(
        changes,
        tuple(sorted(archived - pointers.archived)),
        tuple(sorted(pointers.archived - archived)),
        changed_deployments,
    )


def _revision_of(pointers: Pointers, environment: str) -> int:
    current = pointers.deployments.get(environment)
    return current.revision if current else 0


def _spec_of(pointers: Pointers, environment: str) -> tuple[object, ...]:
    current = pointers.deployments.get(environment)
    return current.spec if current else ()


def after_plan(pointers: Pointers, the_plan: Plan) -> Pointers:
    """The pointers once a transition with this plan is applied."""
    current = dict(pointers.pointers)
    previous = dict(pointers.previous)
    for change in the_plan.changes:
        previous[change.pointer] = change.previous
        if change.version:
            current[change.pointer] = change.version
        else:
            current.pop(change.pointer, None)
    deployments = dict(pointers.deployments)
    for deployment in the_plan.deployments:
        deployments[deployment.environment] = deployment
    archived = (pointers.archived | set(the_plan.archived)) - set(the_plan.unarchived)
    return Pointers(pointers.model, current, frozenset(archived), deployments, previous, pointers.applied + 1)


def pointers_after(model: str, applied: Sequence[Request]) -> Pointers:
    """The pointers of `model` after the transitions of `applied` (in the order they were
    applied): what they were at any past moment, from the history. Each plan is worked out
    again on the pointers of its time, exactly as the decision that applied it did."""
    pointers = Pointers(model)
    for request in applied:
        pointers = after_plan(pointers, plan(pointers, request.moves, request.deployments))
    return pointers


def referenced_versions(moves: Sequence[Move], deployments: Sequence[Deployment]) -> set[int]:
    return {m.version for m in moves if m.version} | {w.version for d in deployments for w in d.weights}


def checked_versions(the_plan: Plan, protected: frozenset[str]) -> list[int]:
    """Versions that protected pointers and environments are made to name."""
    versions = {c.version for c in the_plan.changes if c.version and c.pointer in protected}
    for deployment in the_plan.deployments:
        if DEPLOYMENT_PREFIX + deployment.environment in protected:
            versions |= {w.version for w in deployment.weights}
    return sorted(versions)


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


@dataclass(frozen=True, slots=True)
class DeploymentRevision:
    """One applied revision of an environment, as ListDeploymentRevisions shows it."""

    model: str
    deployment: Deployment
    transition_request: str
    requester: str
    reason: str
    applied_by: str
    apply_time: datetime


def deployment_revision(entry: HistoryEntry, environment: str) -> DeploymentRevision | None:
    """The revision of `environment` an applied transition made; None when it did not change it."""
    for deployment in entry.deployments:
        if deployment.environment == environment:
            return DeploymentRevision(
                entry.model,
                deployment,
                entry.transition_request,
                entry.requester,
                entry.rollback_reason or entry.comment,
                entry.applied_by,
                entry.apply_time,
            )
    return None


def merge_deployment(current: Deployment | None, change: Deployment, fields: frozenset[str]) -> Deployment:
    """The current revision with the named fields (values.DEPLOYMENT_FIELDS) taken from `change`: what
    UpdateDeployment requests. A removed or new environment starts from nothing."""
    base = current if current is not None and current.weights else Deployment(change.environment, ())
    return Deployment(
        change.environment,
        change.weights if "weights" in fields else base.weights,
        change.code if "serving_code" in fields else base.code,
        change.config if "runtime_config" in fields else base.config,
        change.config_schema if "config_schema" in fields else base.config_schema,
    )


@dataclass(frozen=True, slots=True)
class EnvironmentStatus:
    environment: str
    desired: Deployment | None
    """The current revision (empty weights: removed); None when the environment never had one."""
    acknowledged: Report | None
    drift: bool
    drift_reason: str


def _split(d: Deployment) -> str:
    return ", ".join(f"v{w.version}={w.percent}%" for w in d.weights) or "removed"


def environment_status(
    environment: str, desired: Deployment | None, report: Report | None
) -> EnvironmentStatus:
    """Desired against acknowledged: in step only when the last report is a SUCCEEDED rollout of the
    desired revision (or, for a version-only report, of a split that is all that version)."""

    def status(reason: str) -> EnvironmentStatus:
        return EnvironmentStatus(environment, desired, report, bool(reason), reason)

    if desired is None:
        return status("no deployment is desired, yet one was reported")
    if report is None:
        return status(f"nothing acknowledged; revision {desired.revision} is desired")
    if report.revision:
        if report.revision != desired.revision:
            return status(f"revision {report.revision} acknowledged, revision {desired.revision} desired")
    elif tuple((w.version, w.percent) for w in desired.weights) != ((report.version, 100),):
        return status(f"version {report.version} acknowledged, desired split is {_split(desired)}")
    match report.state:
        case ReportState.IN_PROGRESS:
            return status(f"revision {desired.revision} is still rolling out")
        case ReportState.FAILED:
            return status(f"the rollout of revision {desired.revision} failed: {report.detail}"[:1000])
    return status("")


def deployment_status(pointers: Pointers, reports: dict[str, Report]) -> list[EnvironmentStatus]:
    """Every environment that has (or had) a deployment or a report, by name."""
    return [
        environment_status(env, pointers.deployments.get(env), reports.get(env))
        for env in sorted(set(pointers.deployments) | set(reports))
    ]

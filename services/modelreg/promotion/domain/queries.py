"""Pure reading of the pointers: what a transition would change (its plan), which versions it names and
which of them the checks apply to, and the history entry of an applied transition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
        d for d in deployments if tuple(d.weights) != tuple(pointers.deployments.get(d.environment, ()))
    )
    return Plan(
        changes,
        tuple(sorted(archived - pointers.archived)),
        tuple(sorted(pointers.archived - archived)),
        changed_deployments,
    )


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
        if deployment.weights:
            deployments[deployment.environment] = deployment.weights
        else:
            deployments.pop(deployment.environment, None)
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

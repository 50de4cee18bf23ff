"""The promotion's events: what a transition request, a policy and a denial record in the log."""

from __future__ import annotations

from dataclasses import dataclass

from modelreg.promotion.domain.state import Request
from modelreg.promotion.domain.values import Approval, Deployment, Policy, Report


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
class DeploymentReported:
    report: Report


Event = (
    TransitionRequested
    | TransitionApproved
    | TransitionRejected
    | TransitionCancelled
    | TransitionApplied
    | PolicySet
    | AccessDenied
    | DeploymentReported
)

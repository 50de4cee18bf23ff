"""The promotion's commands. Time, the actor, the effective policy and the facts about versions are
fields of a command, so the same command on the same state always gives the same decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from modelreg.promotion.domain.values import Deployment, Move, Policy, Report, VersionFacts


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
    policy: Policy = field(kw_only=True)
    """The model's effective policy."""
    facts: Mapping[int, VersionFacts] = field(kw_only=True)
    """What the reference caches know of the versions it names."""


@dataclass(frozen=True, slots=True)
class ApproveTransition:
    name: str
    comment: str
    actor: str
    at: datetime
    facts: Mapping[int, VersionFacts]
    """What the reference caches know of the versions the request names: checks run again at the last
    approval."""


@dataclass(frozen=True, slots=True)
class RejectTransition:
    name: str
    comment: str
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CancelTransition:
    name: str
    comment: str
    actor: str
    at: datetime
    is_admin: bool = False
    """An admin may cancel anyone's request; others only their own."""


@dataclass(frozen=True, slots=True)
class SetPolicy:
    parent: str
    """A namespace or a model."""
    policy: Policy


@dataclass(frozen=True, slots=True)
class ReportDeployment:
    report: Report
    """With the reporter (the actor) and the time set."""


Command = (
    CreateTransition | ApproveTransition | RejectTransition | CancelTransition | SetPolicy | ReportDeployment
)

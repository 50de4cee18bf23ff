"""The promotion aggregate: one per model, holding all of its pointers and its pending requests.

Because every stage pointer, alias and deployment of a model lives in one
aggregate (one stream), a transition that moves several of them is one event,
so readers see all of it or none of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from modelreg.promotion.domain.values import (
    ARCHIVED,
    DEPLOYMENT_PREFIX,
    NONE,
    Approval,
    Check,
    Deployment,
    Move,
    RequestState,
)


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
    deployments: Mapping[str, Deployment] = field(default_factory=dict)
    """Environment -> its current revision; a removed environment stays, with an empty split, so that its
    revision numbers go on."""
    previous: Mapping[str, int] = field(default_factory=dict)
    """For each pointer, the version it named before its latest move (0 = unset): what rollback restores."""
    applied: int = 0
    """Number of applied transitions: the etag."""

    @property
    def etag(self) -> str:
        return f'W/"{self.applied}"'

    @property
    def live_deployments(self) -> dict[str, Deployment]:
        """The environments that have a split now."""
        return {env: d for env, d in self.deployments.items() if d.weights}


@dataclass(frozen=True, slots=True)
class Aggregate:
    pointers: Pointers
    requests: Mapping[str, Request] = field(default_factory=dict)
    """The pending requests (and any other the caller loaded), by name."""

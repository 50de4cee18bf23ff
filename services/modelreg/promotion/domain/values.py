"""The promotion's values: stages, roles, policies and their checks, moves and traffic splits, the facts
about a version; their limits, and the validation (check_*) that needs no state."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from modelreg.errors import InvalidArgument
from modelreg.limits import check_finite, check_text

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
MAX_POLICY_CHECKS = 32
MAX_METRIC_NAME_BYTES = 256


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


def check_moves(moves: Sequence[Move], deployments: Sequence[Deployment], field_: str) -> None:
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
        check_weights(deployment.weights, f"{where}.weights")


def check_weights(weights: Sequence[Weight], field_: str) -> None:
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


def check_policy(policy: Policy, field_: str = "policy") -> None:
    if policy.required_approvals < 1:
        raise InvalidArgument.of(f"{field_}.required_approvals", "must be at least 1")
    if policy.required_approvals > 16:
        raise InvalidArgument.of(f"{field_}.required_approvals", "at most 16")
    if len(policy.protected) > 64:
        raise InvalidArgument.of(f"{field_}.protected", "at most 64 patterns")
    if len(policy.checks) > MAX_POLICY_CHECKS:
        raise InvalidArgument.of(f"{field_}.required_checks", f"at most {MAX_POLICY_CHECKS} checks")
    for i, check in enumerate(policy.checks):
        if check.kind is CheckKind.METRIC_THRESHOLD:
            if not check.metric:
                raise InvalidArgument.of(f"{field_}.required_checks[{i}].metric", "is required")
            # A metric name is a versioning metrics key: short, one line.
            check_text(check.metric, f"{field_}.required_checks[{i}].metric", MAX_METRIC_NAME_BYTES)
            check_finite(check.threshold, f"{field_}.required_checks[{i}].threshold")
            if check.comparison not in COMPARISONS:
                raise InvalidArgument.of(f"{field_}.required_checks[{i}].comparison", "is required")

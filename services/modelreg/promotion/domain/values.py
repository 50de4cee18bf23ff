"""The promotion's values: stages, roles, policies and their checks, moves and traffic splits, the facts
about a version; their limits, and the validation (check_*) that needs no state."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from modelreg.comparisons import COMPARISONS
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
MAX_CONFIG_BYTES = 8192
"""Runtime configuration and its schema, each: a request names up to 16 environments, and an applied
transition carries them twice (request and change), so this keeps every event well under the broker's
record limit."""
MAX_REPOSITORY_BYTES = 512
IMAGE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._/:-]{0,254}@sha256:[0-9a-f]{64}$")
COMMIT_PATTERN = re.compile(r"^[0-9a-f]{7,64}$")
DEPLOYMENT_FIELDS = ("weights", "serving_code", "runtime_config", "config_schema")


class RequestState(StrEnum):
    PENDING = "PENDING"
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    SUPERSEDED = "SUPERSEDED"


class ReportState(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


MAX_DETAIL_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Report:
    """A CD system's acknowledgement of one environment of a model."""

    model: str
    environment: str
    revision: int
    """The deployment revision rolled out; 0 when the report names a version instead."""
    version: int
    state: ReportState
    detail: str
    reporter: str = ""
    time: datetime | None = None


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
    RECENT_EVALUATION = "RECENT_EVALUATION"


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class Check:
    kind: CheckKind
    metric: str = ""
    comparison: str = ""
    threshold: float = 0.0
    dataset_uri: str = ""
    """RECENT_EVALUATION: the dataset the evaluation was made on."""
    dataset_digest: str = ""
    """RECENT_EVALUATION: its digest; empty = any."""
    max_age_s: float = 0.0
    """RECENT_EVALUATION: the most the newest evaluation's age may be; 0 = any."""

    def __str__(self) -> str:
        if self.kind is CheckKind.METRIC_THRESHOLD:
            return f"metrics.{self.metric} {self.comparison} {self.threshold:g}"
        if self.kind is CheckKind.RECENT_EVALUATION:
            on = self.dataset_uri + (f"@{self.dataset_digest}" if self.dataset_digest else "")
            within = f" within {_age(self.max_age_s)}" if self.max_age_s else ""
            return f"recent evaluation {self.metric} {self.comparison} {self.threshold:g} on {on}{within}"
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
class EvaluationFact:
    """The newest evaluation of a version on one dataset (uri, digest), from the lineage topic."""

    dataset_uri: str
    dataset_digest: str
    evaluate_time: datetime
    metrics: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """What the reference caches know about a version; only used to validate."""

    version: int
    status: VersionStatus
    metrics: Mapping[str, float] = field(default_factory=dict)
    has_signature: bool = False
    lineage_recorded: bool = False
    evaluations: tuple[EvaluationFact, ...] = ()


@dataclass(frozen=True, slots=True)
class Move:
    pointer: str
    version: int


@dataclass(frozen=True, slots=True)
class Weight:
    version: int
    percent: int


@dataclass(frozen=True, slots=True)
class ServingCode:
    """What serves the versions: a container image by digest, or a repository at a commit."""

    image: str = ""
    repository: str = ""
    commit: str = ""

    def __bool__(self) -> bool:
        return bool(self.image or self.repository or self.commit)

    def __str__(self) -> str:
        return self.image or (f"{self.repository}@{self.commit}" if self else "")


NO_CODE = ServingCode()


@dataclass(frozen=True, slots=True)
class Deployment:
    """One environment's spec: the split, the serving code, the runtime configuration and its schema."""

    environment: str
    weights: tuple[Weight, ...]
    """Empty: the environment is removed."""
    code: ServingCode = NO_CODE
    config: str = ""
    """Canonical JSON text of an object; empty = `{}`."""
    config_schema: str = ""
    """JSON Schema text; empty = none."""
    revision: int = 0
    """The environment's revision number once applied; 0 in a request."""
    restored: int = 0
    """For a rollback: the revision restored."""

    @property
    def spec(self) -> tuple[object, ...]:
        """What a change compares: a removal is a removal whatever else it says."""
        if not self.weights:
            return ()
        return (self.weights, self.code, self.config, self.config_schema)


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
        check_deployment(deployment, where)


def check_deployment(deployment: Deployment, where: str) -> None:
    check_weights(deployment.weights, f"{where}.weights")
    check_deployment_spec(deployment, where)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def canonical_json(text: str, field_: str) -> str:
    """A JSON object's canonical text (sorted keys, compact); "" for empty or `{}`."""
    if not text.strip():
        return ""
    check_text(text, field_, MAX_CONFIG_BYTES, multiline=True)
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as error:
        raise InvalidArgument.of(field_, f"is not JSON: {error}") from None
    except RecursionError:
        raise InvalidArgument.of(field_, "is nested too deeply") from None
    if not isinstance(value, dict):
        raise InvalidArgument.of(field_, "must be a JSON object")
    try:
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:
        raise InvalidArgument.of(field_, "is nested too deeply") from None
    if len(canonical.encode()) > MAX_CONFIG_BYTES:
        raise InvalidArgument.of(field_, f"is longer than {MAX_CONFIG_BYTES} bytes")
    return "" if canonical == "{}" else canonical


def check_serving_code(code: ServingCode, field_: str) -> None:
    if not code:
        return
    if code.image:
        if code.repository or code.commit:
            raise InvalidArgument.of(field_, "give an image or a repository and commit, not both")
        if not IMAGE_PATTERN.fullmatch(code.image):
            raise InvalidArgument.of(
                f"{field_}.image",
                f"{code.image[:300]!r} is not an image pinned by digest (name@sha256:<hex>)",
            )
        return
    if not code.repository:
        raise InvalidArgument.of(f"{field_}.repository", "is required with a commit")
    check_text(code.repository, f"{field_}.repository", MAX_REPOSITORY_BYTES)
    if not COMMIT_PATTERN.fullmatch(code.commit):
        raise InvalidArgument.of(
            f"{field_}.commit", f"{code.commit[:80]!r} is not a commit (7-64 hex digits)"
        )


def check_deployment_spec(deployment: Deployment, where: str) -> None:
    """Serving code well formed; the configuration satisfies its schema. A removal carries nothing."""
    if not deployment.weights:
        if deployment.code or deployment.config or deployment.config_schema:
            raise InvalidArgument.of(
                f"{where}.weights", "an empty split removes the environment: give no code or configuration"
            )
        return
    check_serving_code(deployment.code, f"{where}.serving_code")
    if not deployment.config_schema:
        return
    # Imported here: only deployments with a schema pay for loading the validator.
    import jsonschema

    schema = json.loads(deployment.config_schema)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise InvalidArgument.of(f"{where}.config_schema", f"is not a JSON Schema: {error.message}") from None
    except RecursionError:
        raise InvalidArgument.of(f"{where}.config_schema", "is nested too deeply") from None
    config = json.loads(deployment.config) if deployment.config else {}
    try:
        # No registry of other documents: a `$ref` resolves within the schema or not at all.
        failure = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(schema).iter_errors(config)
        )
    except Exception as error:  # noqa: BLE001 - an unresolvable $ref, a bad pattern, a too deep schema
        raise InvalidArgument.of(
            f"{where}.config_schema", f"cannot be applied: {type(error).__name__}: {str(error)[:300]}"
        ) from None
    if failure is not None:
        at = "/".join(str(p) for p in failure.absolute_path) or "(top)"
        raise InvalidArgument.of(
            f"{where}.runtime_config", f"does not satisfy config_schema at {at}: {failure.message}"
        )


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
        if check.kind is CheckKind.RECENT_EVALUATION:
            where = f"{field_}.required_checks[{i}]"
            if not check.dataset_uri:
                raise InvalidArgument.of(
                    f"{where}.dataset_uri", "is required: the dataset the evaluation is on"
                )
            check_text(check.dataset_uri, f"{where}.dataset_uri", 2048)
            check_text(check.dataset_digest, f"{where}.dataset_digest", 256)
            if not 0 <= check.max_age_s <= 10 * 365 * 86400:
                raise InvalidArgument.of(f"{where}.max_age", "must be between 0 and 10 years")
        if check.kind in (CheckKind.METRIC_THRESHOLD, CheckKind.RECENT_EVALUATION):
            if not check.metric:
                raise InvalidArgument.of(f"{field_}.required_checks[{i}].metric", "is required")
            # A metric name is a versioning metrics key: short, one line.
            check_text(check.metric, f"{field_}.required_checks[{i}].metric", MAX_METRIC_NAME_BYTES)
            check_finite(check.threshold, f"{field_}.required_checks[{i}].threshold")
            if check.comparison not in COMPARISONS:
                raise InvalidArgument.of(f"{field_}.required_checks[{i}].comparison", "is required")

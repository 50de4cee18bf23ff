"""The versions of one model, as one aggregate: decide and evolve.

The stream is the model (`namespaces/{ns}/models/{model}`), so every version of
it is totally ordered. `decide` picks the next number and resolves the semantic
version from the state it was given; the fold accepts the event only if the
stream has not moved since, so two racing creates can never take the same
number or semver (the loser is retried against the new state).

Pure: no I/O, no gRPC, no protos.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from modelreg.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from modelreg.eventmeta import EventMeta
from modelreg.names import ID_PATTERN
from modelreg.signatures import Signature, TensorSpec, check_signature

SEMVER_PATTERN = re.compile(r"^v?(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$")
MAX_DESCRIPTION_BYTES = 16 * 1024
MAX_TAGS = 64
MAX_TAG_VALUE_BYTES = 256
MAX_METRICS = 256
MAX_PARAMS = 256
MAX_PARAM_VALUE_BYTES = 4096
MAX_PACKAGES = 2000
MAX_SHORT_BYTES = 256
MAX_URL_BYTES = 2048
MAX_FILES = 1000
MAX_PATH_BYTES = 512
MAX_FILE_SIZE = 5 * 1024**4  # 5 TiB, S3's object limit
MAX_REASON_BYTES = 1024
MAX_KEEP_LAST = 10_000
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Status(StrEnum):
    PENDING_UPLOAD = "pending_upload"
    READY = "ready"
    DEPRECATED = "deprecated"
    DELETED = "deleted"


class Bump(StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PIPELINE = "pipeline"


@dataclass(frozen=True, slots=True, order=True)
class SemVer:
    major: int
    minor: int
    pipeline: int

    @classmethod
    def parse(cls, text: str, field_name: str = "semver") -> SemVer:
        match = SEMVER_PATTERN.match(text)
        if not match:
            raise InvalidArgument.of(field_name, f"{text[:40]!r} is not MAJOR.MINOR.PIPELINE (e.g. 1.2.0)")
        return cls(*(int(g) for g in match.groups()))

    def bump(self, kind: Bump) -> SemVer:
        if kind is Bump.MAJOR:
            return SemVer(self.major + 1, 0, 0)
        if kind is Bump.MINOR:
            return SemVer(self.major, self.minor + 1, 0)
        return SemVer(self.major, self.minor, self.pipeline + 1)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.pipeline}"


FIRST_VERSION = SemVer(1, 0, 0)


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    path: str
    size: int
    sha256: str
    media_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class CodeReference:
    repo: str = ""
    commit: str = ""
    dirty: bool = False


@dataclass(frozen=True, slots=True)
class Environment:
    python_version: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    lock_digest: str = ""


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """What the client says about a version when creating it."""

    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    code: CodeReference = field(default_factory=CodeReference)
    environment: Environment = field(default_factory=Environment)
    framework: str = ""
    flavor: str = ""
    signature: Signature | None = None
    files: tuple[ArtifactFile, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelVersion:
    model: str
    number: int
    semver: SemVer
    status: Status
    spec: VersionSpec
    create_time: datetime
    update_time: datetime
    created_by: str
    updated_by: str
    state_reason: str = ""
    created_revision: int = 0
    """The stream revision of its creation: how a create (or its replay) finds its version."""

    @property
    def name(self) -> str:
        return f"{self.model}/versions/{self.number}"


@dataclass(frozen=True, slots=True)
class ModelVersions:
    """The aggregate: every version of one model, and its retention policy."""

    model: str
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    keep_last_per_major: int = 0
    semver_index: set[SemVer] | None = field(default=None, compare=False, repr=False)
    """Derived from versions, so that fits() need not scan them (a fold over a model's
    history was quadratic); None means not built yet. Never read it directly: see taken()."""

    def taken(self, semver: SemVer) -> bool:
        """Whether any version (deleted ones too) has this semver."""
        index = self.semver_index
        # Versions are never removed and their semvers are distinct, so an index of another
        # size is stale: a caller filled `versions` after construction (the read model does).
        if index is None or len(index) != len(self.versions):
            index = {v.semver for v in self.versions.values()}
            object.__setattr__(self, "semver_index", index)
        return semver in index

    @property
    def latest_number(self) -> int:
        return max(self.versions, default=0)

    def get(self, number: int) -> ModelVersion:
        version = self.versions.get(number)
        if version is None:
            raise NotFound(f"{self.model}/versions/{number} does not exist")
        return version

    def line(self, major: int) -> list[ModelVersion]:
        """The MAJOR line, by semantic version; deleted versions included (semvers are never reused)."""
        return sorted((v for v in self.versions.values() if v.semver.major == major), key=lambda v: v.semver)


EMPTY = ModelVersions("")

# Validation -----------------------------------------------------------------


def _check_text(value: str, field_name: str, limit: int) -> None:
    if len(value.encode()) > limit:
        raise InvalidArgument.of(field_name, f"is longer than {limit} bytes")


def _check_key(key: str, field_name: str) -> None:
    if not ID_PATTERN.match(key):
        raise InvalidArgument.of(f"{field_name}[{key[:140]!r}]", f"key must match {ID_PATTERN.pattern}")


def check_tags(tags: dict[str, str], field_name: str) -> None:
    if len(tags) > MAX_TAGS:
        raise InvalidArgument.of(field_name, f"has {len(tags)} entries, at most {MAX_TAGS}")
    for key, value in tags.items():
        _check_key(key, field_name)
        _check_text(value, f"{field_name}[{key!r}]", MAX_TAG_VALUE_BYTES)


def check_path(path: str, field_name: str) -> None:
    _check_text(path, field_name, MAX_PATH_BYTES)
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in path:
        raise InvalidArgument.of(field_name, "must be a relative POSIX path without '.', '..' or empty parts")
    if any(ord(c) < 32 for c in path):
        raise InvalidArgument.of(field_name, "must not contain control characters")


def check_files(files: tuple[ArtifactFile, ...], field_name: str) -> None:
    if len(files) > MAX_FILES:
        raise InvalidArgument.of(field_name, f"has {len(files)} entries, at most {MAX_FILES}")
    seen: set[str] = set()
    for i, f in enumerate(files):
        where = f"{field_name}[{i}]"
        check_path(f.path, f"{where}.path")
        if f.path in seen:
            raise InvalidArgument.of(f"{where}.path", f"{f.path!r} appears twice")
        seen.add(f.path)
        if not 0 <= f.size <= MAX_FILE_SIZE:
            raise InvalidArgument.of(f"{where}.size", f"must be between 0 and {MAX_FILE_SIZE}")
        if not _HEX64.match(f.sha256):
            raise InvalidArgument.of(f"{where}.sha256", "must be 64 lower-case hex characters")
        _check_text(f.media_type, f"{where}.media_type", MAX_SHORT_BYTES)


def check_spec(spec: VersionSpec, prefix: str = "model_version") -> None:
    _check_text(spec.description, f"{prefix}.description", MAX_DESCRIPTION_BYTES)
    check_tags(spec.tags, f"{prefix}.tags")
    if len(spec.metrics) > MAX_METRICS:
        raise InvalidArgument.of(
            f"{prefix}.metrics", f"has {len(spec.metrics)} entries, at most {MAX_METRICS}"
        )
    for key, value in spec.metrics.items():
        _check_text(key, f"{prefix}.metrics", MAX_SHORT_BYTES)
        if not key or not math.isfinite(value):
            raise InvalidArgument.of(
                f"{prefix}.metrics[{key[:140]!r}]", "needs a non-empty key and a finite value"
            )
    if len(spec.params) > MAX_PARAMS:
        raise InvalidArgument.of(f"{prefix}.params", f"has {len(spec.params)} entries, at most {MAX_PARAMS}")
    for key, value in spec.params.items():
        _check_text(key, f"{prefix}.params", MAX_SHORT_BYTES)
        if not key:
            raise InvalidArgument.of(f"{prefix}.params", "keys must not be empty")
        _check_text(value, f"{prefix}.params[{key[:140]!r}]", MAX_PARAM_VALUE_BYTES)
    _check_text(spec.code.repo, f"{prefix}.code.repo", MAX_URL_BYTES)
    _check_text(spec.code.commit, f"{prefix}.code.commit", MAX_SHORT_BYTES)
    env = spec.environment
    _check_text(env.python_version, f"{prefix}.environment.python_version", 64)
    _check_text(env.lock_digest, f"{prefix}.environment.lock_digest", MAX_SHORT_BYTES)
    if len(env.packages) > MAX_PACKAGES:
        raise InvalidArgument.of(f"{prefix}.environment.packages", f"at most {MAX_PACKAGES} entries")
    for key, value in env.packages.items():
        if not key:
            raise InvalidArgument.of(f"{prefix}.environment.packages", "names must not be empty")
        _check_text(key, f"{prefix}.environment.packages", MAX_SHORT_BYTES)
        _check_text(value, f"{prefix}.environment.packages[{key[:140]!r}]", MAX_SHORT_BYTES)
    _check_text(spec.framework, f"{prefix}.framework", 64)
    _check_text(spec.flavor, f"{prefix}.flavor", 64)
    if spec.signature is not None:
        check_signature(spec.signature, f"{prefix}.signature")
    check_files(spec.files, f"{prefix}.files")


def signature_differences(old: Signature, new: Signature) -> list[str]:
    """Why `new` cannot replace `old` within one MAJOR line; empty when compatible.

    Inputs may be added (callers that do not send them keep working only if the
    model defaults them, which is the model author's promise when not bumping
    MAJOR), but never removed or retyped; outputs must stay exactly the same.
    """
    differences = []
    new_inputs = {s.name: s for s in new.inputs}
    for spec in old.inputs:
        match = new_inputs.get(spec.name)
        if match is None:
            differences.append(f"input {spec.name!r} removed")
        elif (match.dtype, match.shape) != (spec.dtype, spec.shape):
            differences.append(f"input {spec.name!r} changed from {_typed(spec)} to {_typed(match)}")
    old_outputs = {s.name: s for s in old.outputs}
    new_outputs = {s.name: s for s in new.outputs}
    for name in sorted(old_outputs.keys() | new_outputs.keys()):
        before, after = old_outputs.get(name), new_outputs.get(name)
        if before is None:
            differences.append(f"output {name!r} added")
        elif after is None:
            differences.append(f"output {name!r} removed")
        elif (before.dtype, before.shape) != (after.dtype, after.shape):
            differences.append(f"output {name!r} changed from {_typed(before)} to {_typed(after)}")
    return differences


def _typed(spec: TensorSpec) -> str:
    return f"{spec.dtype}{list(spec.shape)}"


# Commands -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateVersion:
    model: str
    spec: VersionSpec
    bump: Bump | None = None
    semver: SemVer | None = None

    def __post_init__(self) -> None:
        if (self.bump is None) == (self.semver is None):
            raise InvalidArgument.of("bump", "set exactly one of bump and semver")
        check_spec(self.spec)


@dataclass(frozen=True, slots=True)
class DeclareManifest:
    number: int
    files: tuple[ArtifactFile, ...]

    def __post_init__(self) -> None:
        check_files(self.files, "files")


@dataclass(frozen=True, slots=True)
class Finalize:
    number: int
    verified: bool
    """The use case checked every blob of the manifest it read; decide refuses otherwise."""
    manifest: tuple[ArtifactFile, ...]
    """The manifest that was verified: if it changed meanwhile, the check does not count."""


@dataclass(frozen=True, slots=True)
class UpdateVersion:
    number: int
    paths: tuple[str, ...]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.paths:
            raise InvalidArgument.of("update_mask", "names no field; updatable: description, tags")
        for path in self.paths:
            if path not in ("description", "tags"):
                raise InvalidArgument.of(
                    "update_mask", f"{path[:60]!r} cannot be changed (only description and tags can)"
                )
        _check_text(self.description, "model_version.description", MAX_DESCRIPTION_BYTES)
        check_tags(self.tags, "model_version.tags")


@dataclass(frozen=True, slots=True)
class Deprecate:
    number: int
    reason: str = ""

    def __post_init__(self) -> None:
        _check_text(self.reason, "reason", MAX_REASON_BYTES)


@dataclass(frozen=True, slots=True)
class Delete:
    number: int
    reason: str = ""
    protected_by: tuple[str, ...] = ()
    """Stages and aliases that point to this version (from the promotion cache)."""

    def __post_init__(self) -> None:
        _check_text(self.reason, "reason", MAX_REASON_BYTES)


@dataclass(frozen=True, slots=True)
class SetRetention:
    keep_last_per_major: int

    def __post_init__(self) -> None:
        if not 0 <= self.keep_last_per_major <= MAX_KEEP_LAST:
            raise InvalidArgument.of("policy.keep_last_per_major", f"must be between 0 and {MAX_KEEP_LAST}")


Command = CreateVersion | DeclareManifest | Finalize | UpdateVersion | Deprecate | Delete | SetRetention

# Events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionCreated:
    number: int
    semver: SemVer
    spec: VersionSpec


@dataclass(frozen=True, slots=True)
class ManifestDeclared:
    number: int
    files: tuple[ArtifactFile, ...]


@dataclass(frozen=True, slots=True)
class VersionFinalized:
    number: int


@dataclass(frozen=True, slots=True)
class VersionUpdated:
    number: int
    paths: tuple[str, ...]
    description: str
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class VersionDeprecated:
    number: int
    reason: str


@dataclass(frozen=True, slots=True)
class VersionDeleted:
    number: int
    reason: str


@dataclass(frozen=True, slots=True)
class RetentionSet:
    keep_last_per_major: int


Event = (
    VersionCreated | ManifestDeclared | VersionFinalized | VersionUpdated | VersionDeprecated | VersionDeleted
) | RetentionSet


def resolve_semver(state: ModelVersions, command: CreateVersion) -> SemVer:
    existing = [v.semver for v in state.versions.values()]
    if command.bump is not None:
        # From the greatest semver ever given (deleted ones too), so none is reused.
        return max(existing).bump(command.bump) if existing else FIRST_VERSION
    wanted = command.semver
    assert wanted is not None
    if wanted in existing:
        raise AlreadyExists(f"{state.model} already has version {wanted}")
    line = state.line(wanted.major)
    if line and line[-1].semver > wanted:
        raise FailedPrecondition(
            f"version {wanted} must be greater than every version of MAJOR line {wanted.major}; "
            f"{line[-1].semver} exists"
        )
    return wanted


def decide(state: ModelVersions, command: Command) -> Event:
    match command:
        case CreateVersion():
            semver = resolve_semver(state, command)
            previous = [v for v in state.line(semver.major) if v.status is not Status.DELETED]
            if previous and previous[-1].semver < semver:
                check_compatible(previous[-1], command.spec.signature, semver)
            return VersionCreated(state.latest_number + 1, semver, command.spec)
        case DeclareManifest(number, files):
            version = _live(state, number)
            if version.status is not Status.PENDING_UPLOAD:
                raise _immutable(version)
            return ManifestDeclared(number, files)
        case Finalize(number, verified, manifest):
            version = _live(state, number)
            if version.status is not Status.PENDING_UPLOAD:
                raise _immutable(version)
            if not verified or manifest != version.spec.files:
                raise FailedPrecondition(f"{version.name}: the manifest changed while it was being verified")
            return VersionFinalized(number)
        case UpdateVersion(number, paths, description, tags):
            _live(state, number)
            return VersionUpdated(number, paths, description, tags)
        case Deprecate(number, reason):
            version = _live(state, number)
            if version.status is not Status.READY:
                raise FailedPrecondition(
                    f"{version.name} is {version.status.value.upper()}; only READY can be deprecated"
                )
            return VersionDeprecated(number, reason)
        case Delete(number, reason, protected_by):
            version = _live(state, number)
            if protected_by:
                raise FailedPrecondition(
                    f"{version.name} is what {', '.join(sorted(protected_by))} point(s) to; move them first"
                )
            return VersionDeleted(number, reason)
        case SetRetention(keep):
            return RetentionSet(keep)
    raise TypeError(f"unknown command {command!r}")


def check_compatible(previous: ModelVersion, signature: Signature | None, semver: SemVer) -> None:
    # Without a signature on either side there is nothing to compare; see the report.
    if previous.spec.signature is None or signature is None:
        return
    differences = signature_differences(previous.spec.signature, signature)
    if differences:
        raise FailedPrecondition(
            f"the signature is incompatible with {previous.semver} (version {previous.number}) without a "
            f"MAJOR bump ({semver}): " + "; ".join(differences)
        )


def _live(state: ModelVersions, number: int) -> ModelVersion:
    version = state.get(number)
    if version.status is Status.DELETED:
        raise NotFound(f"{version.name} was deleted")
    return version


def _immutable(version: ModelVersion) -> FailedPrecondition:
    return FailedPrecondition(
        f"{version.name} is {version.status.value.upper()}: its artifacts and manifest are immutable"
    )


def fits(state: ModelVersions, event: Event) -> bool:
    """Whether an accepted event can apply to the state.

    Events this service appends always fit: decide checked them against this
    very state. A hand-made record on the topic may not (a version that does not
    exist, a number or semver already taken); the fold accepts it, since the rule
    knows nothing of payloads, and the read model skips it rather than wedging.
    """
    match event:
        case VersionCreated(number, semver, _):
            return number >= 1 and number not in state.versions and not state.taken(semver)
        case RetentionSet():
            return True
    return event.number in state.versions


def evolve(state: ModelVersions, event: Event, meta: EventMeta) -> ModelVersions:
    versions = dict(state.versions)

    def change(number: int, **values: object) -> ModelVersions:
        versions[number] = replace(
            versions[number], update_time=meta.occurred_at, updated_by=meta.actor, **values
        )  # type: ignore[arg-type]
        # Constructed rather than replace()d: this runs once per event of a replay.
        return ModelVersions(state.model, versions, state.keep_last_per_major, state.semver_index)

    match event:
        case VersionCreated(number, semver, spec):
            versions[number] = ModelVersion(
                meta.stream,
                number,
                semver,
                Status.PENDING_UPLOAD,
                spec,
                meta.occurred_at,
                meta.occurred_at,
                meta.actor,
                meta.actor,
                created_revision=meta.revision,
            )
            index = state.semver_index
            if index is not None and len(index) == len(state.versions):
                index = {*index, semver}  # the parent's index stays the parent's
            else:
                index = None
            return ModelVersions(meta.stream, versions, state.keep_last_per_major, index)
        case ManifestDeclared(number, files):
            return change(number, spec=replace(versions[number].spec, files=files))
        case VersionFinalized(number):
            return change(number, status=Status.READY)
        case VersionUpdated(number, paths, description, tags):
            spec = versions[number].spec
            if "description" in paths:
                spec = replace(spec, description=description)
            if "tags" in paths:
                spec = replace(spec, tags=dict(tags))
            return change(number, spec=spec)
        case VersionDeprecated(number, reason):
            return change(number, status=Status.DEPRECATED, state_reason=reason)
        case VersionDeleted(number, reason):
            return change(number, status=Status.DELETED, state_reason=reason)
        case RetentionSet(keep):
            return ModelVersions(meta.stream, state.versions, keep, state.semver_index)
    raise TypeError(f"unknown event {event!r}")


# Retention ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    delete: tuple[ModelVersion, ...]
    protected: tuple[int, ...]


def retention_plan(state: ModelVersions, pointed: frozenset[int]) -> RetentionPlan:
    """What keep-last-N-per-MAJOR-line removes: READY and DEPRECATED versions beyond
    the N greatest semvers of their line. PENDING_UPLOAD is never touched (an
    upload may be in progress), and versions a stage or alias points to are kept."""
    keep = state.keep_last_per_major
    if keep <= 0:
        return RetentionPlan((), ())
    delete: list[ModelVersion] = []
    protected: list[int] = []
    for major in sorted({v.semver.major for v in state.versions.values()}):
        candidates = [v for v in state.line(major) if v.status in (Status.READY, Status.DEPRECATED)]
        for version in candidates[: max(0, len(candidates) - keep)]:
            (protected.append(version.number) if version.number in pointed else delete.append(version))
    return RetentionPlan(tuple(sorted(delete, key=lambda v: v.number)), tuple(sorted(protected)))


# References -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """`versions/3` (number), `@v1.2.0` (semver), `@latest`, `@v1.latest`, or a promotion
    pointer: `@production` (a stage, stored upper case) or `@champion` (an alias)."""

    model: str
    number: int | None = None
    semver: SemVer | None = None
    latest_major: int | None = None
    latest: bool = False
    pointer: str | None = None


def resolve(state: ModelVersions, ref: Reference) -> ModelVersion:
    live = [v for v in state.versions.values() if v.status is not Status.DELETED]
    if ref.number is not None:
        return state.get(ref.number)
    if ref.semver is not None:
        for v in state.versions.values():
            if v.semver == ref.semver:
                return v
        raise NotFound(f"{ref.model} has no version {ref.semver}")
    if ref.latest_major is not None:
        line = [v for v in live if v.semver.major == ref.latest_major]
        if not line:
            raise NotFound(f"{ref.model} has no live version in MAJOR line {ref.latest_major}")
        return max(line, key=lambda v: v.semver)
    if not live:
        raise NotFound(f"{ref.model} has no live version")
    return max(live, key=lambda v: v.number)

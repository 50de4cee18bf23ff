"""The values a version is made of, their limits and their validation.

Pure: no I/O, no gRPC, no protos.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from modelreg import limits
from modelreg.errors import InvalidArgument
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


class SemVer(NamedTuple):
    # A named tuple, ordered and hashed as its three numbers: a replay hashes each created
    # semver four times (taken? by the batch, by the state, by what the rebuild wrote) and a
    # dataclass's __hash__ runs in Python (0.25 us each).
    major: int
    minor: int
    pipeline: int

    @classmethod
    def parse(cls, text: str, field_name: str = "semver") -> SemVer:
        match = SEMVER_PATTERN.fullmatch(text)
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


def check_text(value: str, field_name: str, limit: int) -> None:
    """modelreg.limits' policy: no NUL or other control characters but newline and tab."""
    limits.check_text(value, field_name, limit, multiline=True)


def _check_key(key: str, field_name: str) -> None:
    if not ID_PATTERN.fullmatch(key):
        raise InvalidArgument.of(f"{field_name}[{key[:140]!r}]", f"key must match {ID_PATTERN.pattern}")


def check_tags(tags: dict[str, str], field_name: str) -> None:
    if len(tags) > MAX_TAGS:
        raise InvalidArgument.of(field_name, f"has {len(tags)} entries, at most {MAX_TAGS}")
    for key, value in tags.items():
        _check_key(key, field_name)
        check_text(value, f"{field_name}[{key!r}]", MAX_TAG_VALUE_BYTES)


def check_path(path: str, field_name: str) -> None:
    check_text(path, field_name, MAX_PATH_BYTES)
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
        if not _HEX64.fullmatch(f.sha256):
            raise InvalidArgument.of(f"{where}.sha256", "must be 64 lower-case hex characters")
        check_text(f.media_type, f"{where}.media_type", MAX_SHORT_BYTES)


def check_spec(spec: VersionSpec, prefix: str = "model_version") -> None:
    check_text(spec.description, f"{prefix}.description", MAX_DESCRIPTION_BYTES)
    check_tags(spec.tags, f"{prefix}.tags")
    if len(spec.metrics) > MAX_METRICS:
        raise InvalidArgument.of(
            f"{prefix}.metrics", f"has {len(spec.metrics)} entries, at most {MAX_METRICS}"
        )
    for key, metric in spec.metrics.items():
        check_text(key, f"{prefix}.metrics", MAX_SHORT_BYTES)
        if not key or not math.isfinite(metric):
            raise InvalidArgument.of(
                f"{prefix}.metrics[{key[:140]!r}]", "needs a non-empty key and a finite value"
            )
    if len(spec.params) > MAX_PARAMS:
        raise InvalidArgument.of(f"{prefix}.params", f"has {len(spec.params)} entries, at most {MAX_PARAMS}")
    for key, param in spec.params.items():
        check_text(key, f"{prefix}.params", MAX_SHORT_BYTES)
        if not key:
            raise InvalidArgument.of(f"{prefix}.params", "keys must not be empty")
        check_text(param, f"{prefix}.params[{key[:140]!r}]", MAX_PARAM_VALUE_BYTES)
    check_text(spec.code.repo, f"{prefix}.code.repo", MAX_URL_BYTES)
    check_text(spec.code.commit, f"{prefix}.code.commit", MAX_SHORT_BYTES)
    env = spec.environment
    check_text(env.python_version, f"{prefix}.environment.python_version", 64)
    check_text(env.lock_digest, f"{prefix}.environment.lock_digest", MAX_SHORT_BYTES)
    if len(env.packages) > MAX_PACKAGES:
        raise InvalidArgument.of(f"{prefix}.environment.packages", f"at most {MAX_PACKAGES} entries")
    for key, package_version in env.packages.items():
        if not key:
            raise InvalidArgument.of(f"{prefix}.environment.packages", "names must not be empty")
        check_text(key, f"{prefix}.environment.packages", MAX_SHORT_BYTES)
        check_text(package_version, f"{prefix}.environment.packages[{key[:140]!r}]", MAX_SHORT_BYTES)
    check_text(spec.framework, f"{prefix}.framework", 64)
    check_text(spec.flavor, f"{prefix}.flavor", 64)
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

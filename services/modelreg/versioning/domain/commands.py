"""What a client asks of a model's versions: one frozen dataclass per command, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelreg.errors import InvalidArgument
from modelreg.versioning.domain.values import (
    MAX_DESCRIPTION_BYTES,
    MAX_KEEP_LAST,
    MAX_REASON_BYTES,
    ArtifactFile,
    Bump,
    SemVer,
    VersionSpec,
    check_files,
    check_spec,
    check_tags,
    check_text,
)


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
        check_text(self.description, "model_version.description", MAX_DESCRIPTION_BYTES)
        check_tags(self.tags, "model_version.tags")


@dataclass(frozen=True, slots=True)
class Deprecate:
    number: int
    reason: str = ""

    def __post_init__(self) -> None:
        check_text(self.reason, "reason", MAX_REASON_BYTES)


@dataclass(frozen=True, slots=True)
class Delete:
    number: int
    reason: str = ""
    protected_by: tuple[str, ...] = ()
    """Stages and aliases that point to this version (from the promotion cache)."""

    def __post_init__(self) -> None:
        check_text(self.reason, "reason", MAX_REASON_BYTES)


@dataclass(frozen=True, slots=True)
class SetRetention:
    keep_last_per_major: int

    def __post_init__(self) -> None:
        if not 0 <= self.keep_last_per_major <= MAX_KEEP_LAST:
            raise InvalidArgument.of("policy.keep_last_per_major", f"must be between 0 and {MAX_KEEP_LAST}")


Command = CreateVersion | DeclareManifest | Finalize | UpdateVersion | Deprecate | Delete | SetRetention

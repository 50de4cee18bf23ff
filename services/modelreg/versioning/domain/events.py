"""What happened to a model's versions: one frozen dataclass per event, as the log carries them."""

from __future__ import annotations

from dataclasses import dataclass

from modelreg.versioning.domain.values import ArtifactFile, SemVer, VersionSpec


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

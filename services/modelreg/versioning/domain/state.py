"""The aggregate: every version of one model, and its retention policy.

The stream is the model (`namespaces/{ns}/models/{model}`), so every version of
it is totally ordered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from modelreg.errors import NotFound
from modelreg.versioning.domain.values import SemVer, Status, VersionSpec


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
    """Derived from versions, so that can_evolve() need not scan them (a fold over a model's
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

"""Pure reads of a model's versions: what retention removes, and what a reference names."""

from __future__ import annotations

from dataclasses import dataclass

from modelreg.errors import NotFound
from modelreg.versioning.domain.state import ModelVersion, ModelVersions
from modelreg.versioning.domain.values import SemVer, Status


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

"""evolve(state, event, meta) -> state: the fold of a model's events into its versions.

The read model folds with this very function (adapters/projection), so what a
decision reads is what the fold wrote.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from modelreg.eventmeta import EventMeta
from modelreg.versioning.domain.events import (
    Event,
    ManifestDeclared,
    RetentionSet,
    VersionCreated,
    VersionDeleted,
    VersionDeprecated,
    VersionFinalized,
    VersionUpdated,
)
from modelreg.versioning.domain.state import ModelVersion, ModelVersions
from modelreg.versioning.domain.values import Status, VersionSpec


def can_evolve(state: ModelVersions, event: Event) -> bool:
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
        case (
            ManifestDeclared()
            | VersionFinalized()
            | VersionUpdated()
            | VersionDeprecated()
            | VersionDeleted()
        ):
            return event.number in state.versions
        case _:
            assert_never(event)


def evolve(state: ModelVersions, event: Event, meta: EventMeta) -> ModelVersions:
    versions = dict(state.versions)

    def change(
        number: int,
        *,
        status: Status | None = None,
        spec: VersionSpec | None = None,
        reason: str | None = None,
    ) -> ModelVersions:
        version = versions[number]
        versions[number] = replace(
            version,
            status=version.status if status is None else status,
            spec=version.spec if spec is None else spec,
            state_reason=version.state_reason if reason is None else reason,
            update_time=meta.occurred_at,
            updated_by=meta.actor,
        )
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
            return change(number, status=Status.DEPRECATED, reason=reason)
        case VersionDeleted(number, reason):
            return change(number, status=Status.DELETED, reason=reason)
        case RetentionSet(keep):
            return ModelVersions(meta.stream, state.versions, keep, state.semver_index)
        case _:
            assert_never(event)

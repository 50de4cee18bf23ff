"""decide(state, command) -> the one event the command is.

`decide` picks the next number and resolves the semantic version from the state
it was given; the fold accepts the event only if the stream has not moved since,
so two racing creates can never take the same number or semver (the loser is
retried against the new state).
"""

from __future__ import annotations

from typing import assert_never

from modelreg.errors import AlreadyExists, FailedPrecondition, NotFound
from modelreg.signatures import Signature
from modelreg.versioning.domain.commands import (
    Command,
    CreateVersion,
    DeclareManifest,
    Delete,
    Deprecate,
    Finalize,
    SetRetention,
    UpdateVersion,
)
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
from modelreg.versioning.domain.values import FIRST_VERSION, SemVer, Status, signature_differences


def decide(state: ModelVersions, command: Command) -> Event:
    match command:
        case CreateVersion():
            return _decide_create(state, command)
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
        case _:
            assert_never(command)


def _decide_create(state: ModelVersions, command: CreateVersion) -> VersionCreated:
    semver = _resolve_semver(state, command)
    previous = [v for v in state.line(semver.major) if v.status is not Status.DELETED]
    if previous and previous[-1].semver < semver:
        _check_compatible(previous[-1], command.spec.signature, semver)
    return VersionCreated(state.latest_number + 1, semver, command.spec)


def _resolve_semver(state: ModelVersions, command: CreateVersion) -> SemVer:
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


def _check_compatible(previous: ModelVersion, signature: Signature | None, semver: SemVer) -> None:
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

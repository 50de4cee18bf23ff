"""Domain <-> protobuf: the events in envelopes and the ModelVersion resource.

One set of conversions serves the log and the API, so they can never disagree
on what a field means.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC
from typing import TypeVar

from google.protobuf.message import Message

from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.gen.versioning.v1 import events_pb2, versioning_pb2
from modelreg.signatures_proto import signature_from_proto, signature_to_proto
from modelreg.versioning.domain.model import (
    ArtifactFile,
    CodeReference,
    Environment,
    Event,
    ManifestDeclared,
    ModelVersion,
    RetentionSet,
    SemVer,
    Status,
    VersionCreated,
    VersionDeleted,
    VersionDeprecated,
    VersionFinalized,
    VersionSpec,
    VersionUpdated,
)
from modelreg.versioning.domain.names import parse_version_name

_V = TypeVar("_V")

STATE_TO_PROTO = {
    Status.PENDING_UPLOAD: versioning_pb2.ModelVersion.STATE_PENDING_UPLOAD,
    Status.READY: versioning_pb2.ModelVersion.STATE_READY,
    Status.DEPRECATED: versioning_pb2.ModelVersion.STATE_DEPRECATED,
    Status.DELETED: versioning_pb2.ModelVersion.STATE_DELETED,
}


def file_to_proto(f: ArtifactFile) -> versioning_pb2.ArtifactFile:
    return versioning_pb2.ArtifactFile(path=f.path, size=f.size, sha256=f.sha256, media_type=f.media_type)


def file_from_proto(f: versioning_pb2.ArtifactFile) -> ArtifactFile:
    return ArtifactFile(f.path, f.size, f.sha256, f.media_type or "application/octet-stream")


def _dict(m: Mapping[str, _V]) -> dict[str, _V]:
    # dict() of a protobuf map goes key by key through collections.abc; this is 2x faster,
    # and an empty map (most of them) costs only the length check.
    return {k: m[k] for k in m} if m else {}


def spec_from_proto(m: versioning_pb2.ModelVersion) -> VersionSpec:
    code, env = m.code, m.environment
    return VersionSpec(
        description=m.description,
        tags=_dict(m.tags),
        metrics=_dict(m.metrics),
        params=_dict(m.params),
        code=CodeReference(code.repo, code.commit, code.dirty),
        environment=Environment(env.python_version, _dict(env.packages), env.lock_digest),
        framework=m.framework,
        flavor=m.flavor,
        signature=signature_from_proto(m.signature) if m.HasField("signature") else None,
        files=tuple(file_from_proto(f) for f in m.files),
    )


def spec_into_proto(spec: VersionSpec, m: versioning_pb2.ModelVersion) -> versioning_pb2.ModelVersion:
    m.description = spec.description
    m.tags.update(spec.tags)
    m.metrics.update(spec.metrics)
    m.params.update(spec.params)
    m.code.CopyFrom(
        versioning_pb2.CodeReference(repo=spec.code.repo, commit=spec.code.commit, dirty=spec.code.dirty)
    )
    env = spec.environment
    m.environment.CopyFrom(
        versioning_pb2.Environment(
            python_version=env.python_version, packages=env.packages, lock_digest=env.lock_digest
        )
    )
    m.framework = spec.framework
    m.flavor = spec.flavor
    if spec.signature is not None:
        m.signature.CopyFrom(signature_to_proto(spec.signature))
    m.files.extend(file_to_proto(f) for f in spec.files)
    return m


def version_to_proto(v: ModelVersion) -> versioning_pb2.ModelVersion:
    m = versioning_pb2.ModelVersion(
        name=v.name,
        version=v.number,
        semver=str(v.semver),
        state=STATE_TO_PROTO[v.status],
        state_reason=v.state_reason,
        created_by=v.created_by,
        updated_by=v.updated_by,
    )
    m.create_time.FromDatetime(v.create_time)
    m.update_time.FromDatetime(v.update_time)
    return spec_into_proto(v.spec, m)


def encode(model: str, event: Event) -> tuple[str, Message]:
    """The envelope payload field and message of a domain event."""

    def name(number: int) -> str:
        return f"{model}/versions/{number}"

    match event:
        case VersionCreated(number, semver, spec):
            body = spec_into_proto(
                spec, versioning_pb2.ModelVersion(name=name(number), version=number, semver=str(semver))
            )
            return "model_version_created", events_pb2.ModelVersionCreated(model_version=body)
        case ManifestDeclared(number, files):
            return "model_version_manifest_declared", events_pb2.ModelVersionManifestDeclared(
                name=name(number), files=[file_to_proto(f) for f in files]
            )
        case VersionFinalized(number):
            return "model_version_finalized", events_pb2.ModelVersionFinalized(name=name(number))
        case VersionUpdated(number, paths, description, tags):
            body = versioning_pb2.ModelVersion(name=name(number), description=description, tags=tags)
            message = events_pb2.ModelVersionUpdated(model_version=body)
            message.update_mask.paths.extend(paths)
            return "model_version_updated", message
        case VersionDeprecated(number, reason):
            return "model_version_deprecated", events_pb2.ModelVersionDeprecated(
                name=name(number), reason=reason
            )
        case VersionDeleted(number, reason):
            return "model_version_deleted", events_pb2.ModelVersionDeleted(name=name(number), reason=reason)
        case RetentionSet(keep):
            return "retention_policy_set", events_pb2.RetentionPolicySet(
                policy=versioning_pb2.RetentionPolicy(model=model, keep_last_per_major=keep)
            )
    raise TypeError(f"unknown event {event!r}")


@functools.lru_cache(maxsize=4096)
def _semver(text: str) -> SemVer:
    # A log repeats the same few semvers across models; SemVer is immutable, so one can be shared.
    return SemVer.parse(text)


def decode(envelope: Envelope) -> Event | None:
    """The domain event of an envelope; None for payloads of other services."""
    kind = envelope.WhichOneof("payload")

    def number(name: str) -> int:
        return parse_version_name(name)[1]

    match kind:
        case "model_version_created":
            body = envelope.model_version_created.model_version
            return VersionCreated(body.version, _semver(body.semver), spec_from_proto(body))
        case "model_version_manifest_declared":
            e = envelope.model_version_manifest_declared
            return ManifestDeclared(number(e.name), tuple(file_from_proto(f) for f in e.files))
        case "model_version_finalized":
            return VersionFinalized(number(envelope.model_version_finalized.name))
        case "model_version_updated":
            e = envelope.model_version_updated
            body = e.model_version
            return VersionUpdated(
                number(body.name), tuple(e.update_mask.paths), body.description, dict(body.tags)
            )
        case "model_version_deprecated":
            e = envelope.model_version_deprecated
            return VersionDeprecated(number(e.name), e.reason)
        case "model_version_deleted":
            e = envelope.model_version_deleted
            return VersionDeleted(number(e.name), e.reason)
        case "retention_policy_set":
            return RetentionSet(envelope.retention_policy_set.policy.keep_last_per_major)
    return None


def occurred_at(envelope: Envelope):  # type: ignore[no-untyped-def]
    return envelope.occurred_at.ToDatetime(tzinfo=UTC)

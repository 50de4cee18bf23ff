"""The ModelVersion resource and its parts, domain <-> protobuf.

The API answers with these messages and the events embed them (a created version
is a ModelVersion, a declared manifest a list of ArtifactFile), so `api/` and the
event codec share this one set of conversions and can never disagree on what a
field means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from modelreg.gen.versioning.v1 import versioning_pb2
from modelreg.signatures_proto import signature_from_proto, signature_to_proto
from modelreg.versioning.domain.state import ModelVersion
from modelreg.versioning.domain.values import ArtifactFile, CodeReference, Environment, Status, VersionSpec

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

"""Protobuf requests -> domain commands and references."""

from __future__ import annotations

from modelreg.errors import InvalidArgument
from modelreg.gen.versioning.v1 import versioning_pb2
from modelreg.versioning.domain.commands import CreateVersion, UpdateVersion
from modelreg.versioning.domain.names import parse_model, parse_version_name
from modelreg.versioning.domain.values import ArtifactFile, Bump, SemVer
from modelreg.versioning.resources import file_from_proto, spec_from_proto

_BUMP = {
    versioning_pb2.BUMP_MAJOR: Bump.MAJOR,
    versioning_pb2.BUMP_MINOR: Bump.MINOR,
    versioning_pb2.BUMP_PIPELINE: Bump.PIPELINE,
}


def create_command(request: versioning_pb2.CreateModelVersionRequest) -> CreateVersion:
    model = parse_model(request.parent)
    if request.bump not in (versioning_pb2.BUMP_UNSPECIFIED, *_BUMP):
        raise InvalidArgument.of("bump", "is not a known bump kind")
    bump = _BUMP.get(request.bump)
    semver = SemVer.parse(request.semver, "semver") if request.semver else None
    return CreateVersion(model, spec_from_proto(request.model_version), bump, semver)


def update_command(request: versioning_pb2.UpdateModelVersionRequest) -> tuple[str, UpdateVersion]:
    model, number = parse_version_name(request.model_version.name, "model_version.name")
    body = request.model_version
    return model, UpdateVersion(number, tuple(request.update_mask.paths), body.description, dict(body.tags))


def files_of(request: versioning_pb2.PrepareUploadRequest) -> tuple[ArtifactFile, ...] | None:
    return tuple(file_from_proto(f) for f in request.files) if request.files else None

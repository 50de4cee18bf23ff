"""Protobuf <-> domain for the catalog API."""

from __future__ import annotations

import re

from modelreg.catalog.domain.commands import (
    ArchiveRegisteredModel,
    CreateNamespace,
    CreateRegisteredModel,
    DeleteRegisteredModel,
    RestoreRegisteredModel,
    UpdateRegisteredModel,
)
from modelreg.catalog.domain.state import Namespace, RegisteredModel
from modelreg.catalog.domain.values import (
    OUTPUT_ONLY_FIELDS,
    UPDATABLE_FIELDS,
    ModelFields,
    ModelState,
    Property,
)
from modelreg.catalog.resources import fields_to_proto, property_from_proto
from modelreg.errors import InvalidArgument
from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.names import ModelName, check_id, parse_model_name, parse_parent
from modelreg.signatures_proto import signature_from_proto

_STATE = {
    ModelState.ACTIVE: catalog_pb2.RegisteredModel.STATE_ACTIVE,
    ModelState.ARCHIVED: catalog_pb2.RegisteredModel.STATE_ARCHIVED,
    ModelState.DELETED: catalog_pb2.RegisteredModel.STATE_DELETED,
}
_ETAG = re.compile(r'^(?:W/)?"?([0-9]{1,18})"?$')  # [0-9]: \d is every Unicode digit


def fields_of(body: catalog_pb2.RegisteredModel, prefix: str = "registered_model") -> ModelFields:
    properties: dict[str, Property] = {}
    for key, value in body.properties.items():
        prop = property_from_proto(value)
        if prop is None:
            raise InvalidArgument.of(f"{prefix}.properties[{key[:140]!r}]", "has no value set")
        properties[key] = prop
    signature = None
    if body.HasField("signature"):
        signature = signature_from_proto(body.signature)
    return ModelFields(
        description=body.description,
        annotations=body.annotations,
        tags=dict(body.tags),
        properties=properties,
        signature=signature,
        owners=tuple(body.owners),
        display_name=body.display_name,
    )


def create_command(request: catalog_pb2.CreateRegisteredModelRequest) -> CreateRegisteredModel:
    namespace = parse_parent(request.parent)
    model_id = check_id(request.registered_model_id, "registered_model_id")
    if not request.HasField("registered_model"):
        raise InvalidArgument.of("registered_model", "is required")
    return CreateRegisteredModel(ModelName(namespace, model_id), fields_of(request.registered_model))


def expected_revision(etag: str, field: str) -> int | None:
    if not etag:
        return None
    match = _ETAG.fullmatch(etag)
    if match is None:
        raise InvalidArgument.of(field, f"{etag[:40]!r} is not an etag returned by this service")
    return int(match.group(1))


def update_command(request: catalog_pb2.UpdateRegisteredModelRequest) -> UpdateRegisteredModel:
    if not request.HasField("registered_model"):
        raise InvalidArgument.of("registered_model", "is required")
    body = request.registered_model
    name = parse_model_name(body.name, "registered_model.name")
    return UpdateRegisteredModel(
        name=name,
        values=fields_of(body),
        paths=mask_paths(request),
        expected_revision=expected_revision(body.etag, "registered_model.etag"),
    )


def mask_paths(request: catalog_pb2.UpdateRegisteredModelRequest) -> tuple[str, ...]:
    """AIP-134: `*` is every updatable field; no mask is every field set in the body.

    Output-only fields are ignored; unknown paths are left for the command to reject.
    """
    body = request.registered_model
    if not request.HasField("update_mask") or not request.update_mask.paths:
        present = {
            "description": bool(body.description),
            "annotations": bool(body.annotations),
            "tags": bool(body.tags),
            "properties": bool(body.properties),
            "signature": body.HasField("signature"),
            "owners": bool(body.owners),
            "display_name": bool(body.display_name),
        }
        return tuple(f for f in UPDATABLE_FIELDS if present[f])
    paths: list[str] = []
    for path in request.update_mask.paths:
        if path == "*":
            if len(request.update_mask.paths) > 1:
                raise InvalidArgument.of("update_mask", "'*' cannot be combined with other paths")
            return UPDATABLE_FIELDS
        if path in OUTPUT_ONLY_FIELDS:
            continue
        if path not in paths:
            paths.append(path)
    if not paths:
        raise InvalidArgument.of("update_mask", "names only output-only fields")
    return tuple(paths)


def archive_command(request: catalog_pb2.ArchiveRegisteredModelRequest) -> ArchiveRegisteredModel:
    return ArchiveRegisteredModel(parse_model_name(request.name), expected_revision(request.etag, "etag"))


def restore_command(request: catalog_pb2.RestoreRegisteredModelRequest) -> RestoreRegisteredModel:
    return RestoreRegisteredModel(parse_model_name(request.name), expected_revision(request.etag, "etag"))


def delete_command(request: catalog_pb2.DeleteRegisteredModelRequest) -> DeleteRegisteredModel:
    return DeleteRegisteredModel(
        parse_model_name(request.name), request.reason, expected_revision(request.etag, "etag")
    )


def create_namespace_command(request: catalog_pb2.CreateNamespaceRequest) -> CreateNamespace:
    return CreateNamespace(check_id(request.namespace_id, "namespace_id"), request.namespace.description)


def to_proto(model: RegisteredModel) -> catalog_pb2.RegisteredModel:
    message = catalog_pb2.RegisteredModel(
        name=str(model.name),
        state=_STATE[model.state],
        created_by=model.created_by,
        updated_by=model.updated_by,
        etag=etag(model.revision),
    )
    fields_to_proto(model.fields, message, UPDATABLE_FIELDS)
    message.create_time.FromDatetime(model.create_time)
    message.update_time.FromDatetime(model.update_time)
    return message


def namespace_to_proto(namespace: Namespace) -> catalog_pb2.Namespace:
    message = catalog_pb2.Namespace(
        name=f"namespaces/{namespace.name}",
        description=namespace.description,
        created_by=namespace.created_by,
        implicit=namespace.implicit,
        etag=etag(namespace.revision),
    )
    message.create_time.FromDatetime(namespace.create_time)
    return message


def etag(revision: int) -> str:
    return f'W/"{revision}"'

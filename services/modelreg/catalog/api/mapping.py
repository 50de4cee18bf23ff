"""Protobuf <-> domain for the catalog API."""

from __future__ import annotations

from modelreg.catalog.domain.model import CreateRegisteredModel, ModelState, RegisteredModel
from modelreg.catalog.domain.names import ModelName, check_id, parse_parent
from modelreg.errors import InvalidArgument
from modelreg.gen.catalog.v1 import catalog_pb2

_STATE = {
    ModelState.ACTIVE: catalog_pb2.RegisteredModel.STATE_ACTIVE,
    ModelState.ARCHIVED: catalog_pb2.RegisteredModel.STATE_ARCHIVED,
    ModelState.DELETED: catalog_pb2.RegisteredModel.STATE_DELETED,
}


def create_command(request: catalog_pb2.CreateRegisteredModelRequest) -> CreateRegisteredModel:
    namespace = parse_parent(request.parent)
    model_id = check_id(request.registered_model_id, "registered_model_id")
    if not request.HasField("registered_model"):
        raise InvalidArgument.of("registered_model", "is required")
    body = request.registered_model
    return CreateRegisteredModel(
        name=ModelName(namespace, model_id), description=body.description, tags=dict(body.tags)
    )


def to_proto(model: RegisteredModel) -> catalog_pb2.RegisteredModel:
    message = catalog_pb2.RegisteredModel(
        name=str(model.name),
        description=model.description,
        tags=model.tags,
        state=_STATE[model.state],
        created_by=model.created_by,
        updated_by=model.updated_by,
        etag=etag(model.revision),
    )
    message.create_time.FromDatetime(model.create_time)
    message.update_time.FromDatetime(model.update_time)
    return message


def etag(revision: int) -> str:
    return f'W/"{revision}"'

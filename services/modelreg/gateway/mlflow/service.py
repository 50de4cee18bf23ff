"""What each MLflow registry call does against the services: the MLflow semantics on top of
the catalog, versioning and promotion APIs."""

from __future__ import annotations

import uuid
from typing import Any

from modelreg.client import errors as sdk
from modelreg.gateway.backend import Backend
from modelreg.gateway.mlflow import wire
from modelreg.gateway.mlflow.errors import MlflowError, already_exists, invalid, not_found
from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.gen.promotion.v1 import promotion_pb2


def _required(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if value is None or value == "":
        raise invalid(f"Missing value for required parameter '{key}'.")
    if not isinstance(value, str):
        raise invalid(f"Invalid value {value!r} for parameter '{key}' supplied: it must be a string")
    return value


def _tags(args: dict[str, Any]) -> dict[str, str]:
    tags = args.get("tags") or []
    if not isinstance(tags, list):
        raise invalid("Invalid value for parameter 'tags': it must be a list of {key, value}")
    out = {}
    for tag in tags:
        if not isinstance(tag, dict) or not isinstance(tag.get("key"), str):
            raise invalid("Invalid value for parameter 'tags': each tag needs a string 'key'")
        value = tag.get("value", "")
        out[tag["key"]] = "" if value is None else str(value)
    return out


class MlflowRegistry:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def _connection(self) -> Any:
        return self.backend.connection

    def _model_name(self, model_id: str) -> str:
        return f"namespaces/{self.backend.namespace}/models/{model_id}"

    async def _find_model(self, name: str) -> catalog_pb2.RegisteredModel:
        """The live model MLflow calls `name`; RESOURCE_DOES_NOT_EXIST in MLflow's words."""
        c = self._connection
        try:
            return await c.call(
                c.catalog.GetRegisteredModel,
                catalog_pb2.GetRegisteredModelRequest(name=self._model_name(name)),
            )
        except (sdk.NotFound, sdk.InvalidArgument):
            raise not_found(f"Registered Model with name={name} not found") from None

    async def _pointers(self, model: str) -> promotion_pb2.Pointers:
        c = self._connection
        return await c.call(c.promotion.GetPointers, promotion_pb2.GetPointersRequest(model=model))

    async def create_registered_model(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _required(args, "name")
        tags = _tags(args)
        description = args.get("description") or ""
        c = self._connection
        try:
            model = await c.call(
                c.catalog.CreateRegisteredModel,
                catalog_pb2.CreateRegisteredModelRequest(
                    parent=f"namespaces/{self.backend.namespace}",
                    registered_model_id=name,
                    registered_model=catalog_pb2.RegisteredModel(description=description, tags=tags),
                    request_id=str(uuid.uuid4()),
                ),
            )
        except sdk.AlreadyExists:
            raise already_exists(f"Registered Model (name={name}) already exists.") from None
        return {"registered_model": wire.registered_model(name, model, None, [])}

    async def get_registered_model(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _required(args, "name")
        model = await self._find_model(name)
        pointers = await self._pointers(model.name)
        return {"registered_model": wire.registered_model(name, model, pointers, [])}


__all__ = ["MlflowError", "MlflowRegistry"]

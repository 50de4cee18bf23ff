"""What each MLflow registry call does against the services: MLflow's semantics on top of the
catalog, versioning and promotion APIs (README: "MLflow clients: the HTTP gateway")."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from google.protobuf.field_mask_pb2 import FieldMask

from modelreg.client import errors as sdk
from modelreg.gateway.backend import Backend, GatewayConnection
from modelreg.gateway.mlflow import search, wire
from modelreg.gateway.mlflow.errors import MlflowError, already_exists, invalid, not_found
from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.gen.versioning.v1 import versioning_pb2
from modelreg.names import ID_PATTERN

MAX_RESULTS_DEFAULT = 100
MAX_RESULTS_LIMIT = 1000
VERSION_SEARCH_LIMIT = 10_000
"""A version search reads at most this many versions (MLflow's own page limit is 200,000)."""
BUMPS = {
    "major": versioning_pb2.BUMP_MAJOR,
    "minor": versioning_pb2.BUMP_MINOR,
    "pipeline": versioning_pb2.BUMP_PIPELINE,
}
STAGE_POINTER = {"Staging": "STAGING", "Production": "PRODUCTION", "Archived": "ARCHIVED", "None": "NONE"}
MODEL_ORDER = {
    "name": "display_name",
    "timestamp": "update_time",
    "last_updated_timestamp": "update_time",
    "creation_timestamp": "create_time",
}
VERSION_ORDER = ("name", "version_number", "creation_timestamp", "last_updated_timestamp", "timestamp")


def _string(args: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = args.get(key)
    if value is None or value == "":
        if required:
            raise invalid(
                f"Missing value for required parameter '{key}'. "
                "See the API docs for more information about request parameters."
            )
        return ""
    if isinstance(value, list):
        value = value[0]
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise invalid(f"Invalid value {value!r} for parameter '{key}' supplied.")
    return str(value)


def _version_number(args: dict[str, Any]) -> int:
    text = _string(args, "version")
    if not text.isdigit() or int(text) <= 0:
        raise invalid(f"Parameter 'version' must be an integer, got '{text}'.")
    return int(text)


def _tags(args: dict[str, Any]) -> dict[str, str]:
    tags = args.get("tags") or []
    if not isinstance(tags, list):
        raise invalid("Invalid value for parameter 'tags': it must be a list of {key, value}")
    out = {}
    for tag in tags:
        if not isinstance(tag, dict) or not isinstance(tag.get("key"), str) or not tag["key"]:
            raise invalid("Invalid value for parameter 'tags': each tag needs a string 'key'")
        value = tag.get("value", "")
        out[tag["key"]] = "" if value is None else str(value)
    return out


def _max_results(
    args: dict[str, Any], default: int = MAX_RESULTS_DEFAULT, limit: int = MAX_RESULTS_LIMIT
) -> int:
    raw = args.get("max_results")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw[0] if isinstance(raw, list) else raw)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value {raw!r} for parameter 'max_results' supplied.") from None
    if value < 1 or value > limit:
        raise invalid(f"Invalid value for max_results. It must be between 1 and {limit}, but got {value}")
    return value


def _order_by(args: dict[str, Any]) -> list[str]:
    raw = args.get("order_by") or []
    return [raw] if isinstance(raw, str) else [str(item) for item in raw]


def _order_clause(text: str, allowed: Sequence[str]) -> tuple[str, bool]:
    words = text.replace("`", "").split()
    if not words or len(words) > 2 or words[0] not in allowed:
        raise invalid(f"Invalid order by key '{text}' specified. Valid keys are {sorted(set(allowed))}")
    if len(words) == 2 and words[1].upper() not in ("ASC", "DESC"):
        raise invalid(f"Invalid order_by clause '{text}'. Could not be parsed.")
    return words[0], len(words) == 2 and words[1].upper() == "DESC"


def _clean_tag_key(key: str, where: str) -> str:
    if key == wire.SEMVER_TAG:
        raise invalid(f"Tag '{wire.SEMVER_TAG}' is read-only: it shows the version's semantic version")
    return key


class MlflowRegistry:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def _c(self) -> GatewayConnection:
        return self.backend.connection

    @property
    def _namespace(self) -> str:
        return f"namespaces/{self.backend.namespace}"

    # Names -------------------------------------------------------------------------------

    def _model_name(self, model_id: str) -> str:
        return f"{self._namespace}/models/{model_id}"

    @staticmethod
    def display_of(model: catalog_pb2.RegisteredModel) -> str:
        """MLflow's name for a model: its display name, or its id when it has none."""
        return model.display_name or model.name.rsplit("/", 1)[1]

    async def _find_model(self, name: str) -> catalog_pb2.RegisteredModel:
        """The live model MLflow calls `name` (its display name; or its id, for a model
        registered without one); RESOURCE_DOES_NOT_EXIST in MLflow's words."""
        c = self._c
        page = await c.call(
            c.catalog.ListRegisteredModels,
            catalog_pb2.ListRegisteredModelsRequest(
                parent=self._namespace, page_size=1, filter=search.name_filter("=", [name])
            ),
        )
        if not page.registered_models:
            raise not_found(f"Registered Model with name={name} not found")
        return page.registered_models[0]

    async def _find_model_by_id(self, model_id: str) -> catalog_pb2.RegisteredModel:
        c = self._c
        try:
            return await c.call(
                c.catalog.GetRegisteredModel,
                catalog_pb2.GetRegisteredModelRequest(name=self._model_name(model_id)),
            )
        except (sdk.NotFound, sdk.InvalidArgument):
            raise not_found(f"Registered Model with id={model_id} not found") from None

    async def _pointers(self, model: str) -> promotion_pb2.Pointers:
        c = self._c
        return await c.call(c.promotion.GetPointers, promotion_pb2.GetPointersRequest(model=model))

    async def _versions(
        self, model: str, limit: int = VERSION_SEARCH_LIMIT
    ) -> list[versioning_pb2.ModelVersion]:
        c = self._c
        request = versioning_pb2.ListModelVersionsRequest(parent=model, page_size=1000)
        out: list[versioning_pb2.ModelVersion] = []
        async for page in c.pages(c.versioning.ListModelVersions, request):
            out.extend(page.model_versions)
            if len(out) >= limit:
                break
        return out

    async def _version(
        self, name: str, number: int, *, model: catalog_pb2.RegisteredModel | None = None
    ) -> tuple[catalog_pb2.RegisteredModel, versioning_pb2.ModelVersion]:
        model = model or await self._find_model(name)
        c = self._c
        try:
            version = await c.call(
                c.versioning.GetModelVersion,
                versioning_pb2.GetModelVersionRequest(name=f"{model.name}/versions/{number}"),
            )
        except sdk.NotFound:
            raise not_found(f"Model Version (name={name}, version={number}) not found") from None
        if version.state == versioning_pb2.ModelVersion.STATE_DELETED:
            raise not_found(f"Model Version (name={name}, version={number}) not found")
        return model, version

    # Rendering ---------------------------------------------------------------------------

    def _latest(
        self,
        display: str,
        versions: Sequence[versioning_pb2.ModelVersion],
        pointers: promotion_pb2.Pointers,
        stages: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """The newest live version in each stage (all four, or those asked for), by stage order."""
        wanted = {wire.STAGES[s.lower()] for s in stages} if stages else set(wire.STAGES.values())
        newest: dict[str, versioning_pb2.ModelVersion] = {}
        for version in versions:
            if version.state == versioning_pb2.ModelVersion.STATE_DELETED:
                continue
            stage = wire.stage_of(pointers, version.version)
            if stage in wanted and (stage not in newest or version.version > newest[stage].version):
                newest[stage] = version
        order = list(wire.STAGES.values())
        return [
            wire.model_version(display, newest[stage], pointers) for stage in sorted(newest, key=order.index)
        ]

    async def _render_model(self, model: catalog_pb2.RegisteredModel) -> dict[str, Any]:
        display = self.display_of(model)
        pointers, versions = await asyncio.gather(self._pointers(model.name), self._versions(model.name))
        return wire.registered_model(display, model, pointers, self._latest(display, versions, pointers))

    async def _render_version(self, display: str, version: versioning_pb2.ModelVersion) -> dict[str, Any]:
        model = version.name.rsplit("/versions/", 1)[0]
        return wire.model_version(display, version, await self._pointers(model))

    # Registered models -------------------------------------------------------------------

    async def create_registered_model(self, args: dict[str, Any]) -> dict[str, Any]:
        """A model whose display name is MLflow's name, under an id made from it (the name
        itself when it is a valid id and free; else with a random suffix)."""
        name = _string(args, "name")
        tags = _tags(args)
        description = _string(args, "description", required=False)
        try:
            await self._find_model(name)
        except MlflowError:
            pass
        else:
            raise already_exists(f"Registered Model (name={name}) already exists.")
        c = self._c
        for attempt in range(4):
            try:
                model = await c.call(
                    c.catalog.CreateRegisteredModel,
                    catalog_pb2.CreateRegisteredModelRequest(
                        parent=self._namespace,
                        registered_model_id=model_id_for(name, suffixed=attempt > 0),
                        registered_model=catalog_pb2.RegisteredModel(
                            description=description, tags=tags, display_name=name
                        ),
                        request_id=str(uuid.uuid4()),
                    ),
                )
                break
            except sdk.AlreadyExists as error:
                if "display name" in error.message or attempt == 3:
                    raise already_exists(f"Registered Model (name={name}) already exists.") from None
        return {"registered_model": wire.registered_model(name, model, None, [])}

    async def get_registered_model(self, args: dict[str, Any]) -> dict[str, Any]:
        model = await self._find_model(_string(args, "name"))
        return {"registered_model": await self._render_model(model)}

    async def rename_registered_model(self, args: dict[str, Any]) -> dict[str, Any]:
        """A new display name: the old name answers not-found from now on."""
        name = _string(args, "name")
        new_name = _string(args, "new_name")
        model = await self._find_model(name)
        if new_name != name:
            try:
                model = await self._update_model(
                    catalog_pb2.RegisteredModel(name=model.name, display_name=new_name), ["display_name"]
                )
            except sdk.AlreadyExists:
                raise already_exists(f"Registered Model (name={new_name}) already exists.") from None
        return {"registered_model": await self._render_model(model)}

    async def _update_model(
        self, model: catalog_pb2.RegisteredModel, paths: list[str]
    ) -> catalog_pb2.RegisteredModel:
        c = self._c
        return await c.call(
            c.catalog.UpdateRegisteredModel,
            catalog_pb2.UpdateRegisteredModelRequest(
                registered_model=model, update_mask=FieldMask(paths=paths), request_id=str(uuid.uuid4())
            ),
        )

    async def update_registered_model(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        model = await self._find_model(name)
        if "description" in args:
            change = catalog_pb2.RegisteredModel(
                name=model.name, description=_string(args, "description", required=False)
            )
            model = await self._update_model(change, ["description"])
        return {"registered_model": await self._render_model(model)}

    async def delete_registered_model(self, args: dict[str, Any]) -> dict[str, Any]:
        model = await self._find_model(_string(args, "name"))
        c = self._c
        await c.call(
            c.catalog.DeleteRegisteredModel,
            catalog_pb2.DeleteRegisteredModelRequest(
                name=model.name, reason="deleted through MLflow's REST API", request_id=str(uuid.uuid4())
            ),
        )
        return {}

    async def set_registered_model_tag(self, args: dict[str, Any]) -> dict[str, Any]:
        model = await self._find_model(_string(args, "name"))
        key = _clean_tag_key(_string(args, "key"), "key")
        value = _string(args, "value", required=False)
        change = catalog_pb2.RegisteredModel(name=model.name, tags={key: value})
        await self._update_model(change, [f"tags.{key}"])
        return {}

    async def delete_registered_model_tag(self, args: dict[str, Any]) -> dict[str, Any]:
        model = await self._find_model(_string(args, "name"))
        key = _string(args, "key")
        if key not in model.tags:
            return {}
        await self._update_model(catalog_pb2.RegisteredModel(name=model.name), [f"tags.{key}"])
        return {}

    async def search_registered_models(self, args: dict[str, Any]) -> dict[str, Any]:
        clauses = search.parse(_string(args, "filter", required=False), ("name", "tag"))
        max_results = _max_results(args)
        order = []
        for text in _order_by(args):
            key, descending = _order_clause(text, list(MODEL_ORDER))
            order.append(f"{MODEL_ORDER[key]} {'desc' if descending else 'asc'}")
        if not order:
            order.append("display_name asc")  # MLflow's default: by name
        try:
            filter_text = search.to_catalog_filter(clauses)
        except search.MatchesNothing:
            return {"registered_models": []}
        c = self._c
        page = await c.call(
            c.catalog.ListRegisteredModels,
            catalog_pb2.ListRegisteredModelsRequest(
                parent=self._namespace,
                page_size=max_results,
                page_token=_string(args, "page_token", required=False),
                filter=filter_text,
                order_by=", ".join(order),
            ),
        )
        models = await asyncio.gather(*(self._render_model(m) for m in page.registered_models))
        answer: dict[str, Any] = {"registered_models": list(models)}
        if page.next_page_token:
            answer["next_page_token"] = page.next_page_token
        return answer

    async def get_latest_versions(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        raw = args.get("stages") or []
        stages = [raw] if isinstance(raw, str) else [str(s) for s in raw]
        for stage in stages:
            if stage.lower() not in wire.STAGES:
                raise invalid(
                    f"Invalid Model Version stage: {stage}. Value must be one of "
                    f"{', '.join(wire.STAGES.values())}."
                )
        model = await self._find_model(name)
        pointers, versions = await asyncio.gather(self._pointers(model.name), self._versions(model.name))
        return {"model_versions": self._latest(name, versions, pointers, stages)}

    # Aliases -----------------------------------------------------------------------------

    async def _move(self, model: str, moves: dict[str, int], comment: str) -> promotion_pb2.TransitionRequest:
        c = self._c
        transition = await c.call(
            c.promotion.CreateTransitionRequest,
            promotion_pb2.CreateTransitionRequestRequest(
                parent=model,
                transition_request=promotion_pb2.TransitionRequest(
                    moves=[promotion_pb2.PointerMove(pointer=p, version=v) for p, v in moves.items()],
                    comment=comment,
                ),
                request_id=str(uuid.uuid4()),
            ),
        )
        if transition.state == promotion_pb2.TransitionRequest.STATE_PENDING:
            targets = ", ".join(f"{p}={v}" for p, v in moves.items())
            raise MlflowError(
                "PERMISSION_DENIED",
                f"Moving {targets} of {model.rsplit('/', 1)[1]} needs approval under the model's promotion "
                f"policy: transition request {transition.name} was created and is PENDING "
                f"({transition.required_approvals} approval(s) required); it applies once approved",
            )
        return transition

    async def set_registered_model_alias(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        alias = _string(args, "alias")
        number = _version_number(args)
        model, _ = await self._version(name, number)
        if alias.lower() in ("latest",) or alias.lower() in wire.STAGES:
            raise invalid(f"'{alias}' alias name (case insensitive) is reserved.")
        await self._move(model.name, {alias: number}, f"set_registered_model_alias {alias}")
        return {}

    async def delete_registered_model_alias(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        alias = _string(args, "alias")
        model = await self._find_model(name)
        pointers = await self._pointers(model.name)
        if alias in pointers.aliases:
            await self._move(model.name, {alias: 0}, f"delete_registered_model_alias {alias}")
        return {}

    async def get_model_version_by_alias(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        alias = _string(args, "alias")
        model = await self._find_model(name)
        pointers = await self._pointers(model.name)
        number = pointers.aliases.get(alias)
        if not number:
            raise invalid(f"Registered model alias {alias} not found.")
        _, version = await self._version(name, number)
        return {"model_version": wire.model_version(name, version, pointers)}

    # Model versions ----------------------------------------------------------------------

    async def create_model_version(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        source = _string(args, "source", required=False)
        tags = _tags(args)
        tags.pop(wire.SEMVER_TAG, None)  # copies carry the source's read-only tag
        bump_text = tags.pop(wire.BUMP_TAG, "minor").lower()
        if bump_text not in BUMPS:
            raise invalid(f"Tag '{wire.BUMP_TAG}' must be one of major, minor, pipeline, not '{bump_text}'")
        model = await self._find_model(name)
        params = {
            wire.SOURCE_PARAM: source,
            wire.RUN_ID_PARAM: _string(args, "run_id", required=False),
            wire.RUN_LINK_PARAM: _string(args, "run_link", required=False),
            wire.MODEL_ID_PARAM: _string(args, "model_id", required=False),
        }
        files = await self._source_files(source)
        c = self._c
        request_id = str(uuid.uuid4())
        version = await c.call(
            c.versioning.CreateModelVersion,
            versioning_pb2.CreateModelVersionRequest(
                parent=model.name,
                model_version=versioning_pb2.ModelVersion(
                    description=_string(args, "description", required=False),
                    tags=tags,
                    params={k: v for k, v in params.items() if v},
                    files=[f.manifest for f in files],
                ),
                bump=BUMPS[bump_text],
                request_id=request_id,
            ),
        )
        if version.state == versioning_pb2.ModelVersion.STATE_PENDING_UPLOAD:
            await self._upload(version.name, files)
            version = await c.call(
                c.versioning.FinalizeModelVersion,
                versioning_pb2.FinalizeModelVersionRequest(
                    name=version.name, request_id=f"{request_id}/finalize"
                ),
            )
        return {"model_version": await self._render_version(name, version)}

    async def _source_files(self, source: str) -> list[SourceFile]:
        """The files a version is made of: a local directory (or file) the gateway may read
        (MODELREG_GATEWAY_SOURCE_ROOTS), or another version (`models:/name/3`, as
        copy_model_version sends), whose blobs are shared. Other sources are recorded only."""
        if source.startswith("models:/"):
            return await self._version_files(source)
        path = self._local_path(source)
        if path is None:
            return []
        return await asyncio.to_thread(scan, path)

    def _local_path(self, source: str) -> Path | None:
        parsed = urlparse(source)
        if parsed.scheme not in ("", "file"):
            return None
        path = Path(unquote(parsed.path) if parsed.scheme else source)
        if not path.is_absolute():
            return None
        roots = self.backend.settings.source_roots
        resolved = path.resolve()
        if not any(resolved == root or root in resolved.parents for root in roots):
            if roots or path.exists():
                raise MlflowError(
                    "PERMISSION_DENIED",
                    f"The gateway reads local sources only under MODELREG_GATEWAY_SOURCE_ROOTS; "
                    f"{source} is not under any of them",
                )
            return None
        if not resolved.exists():
            raise invalid(f"Source {source} does not exist")
        return resolved

    async def _version_files(self, source: str) -> list[SourceFile]:
        rest = source[len("models:/") :]
        if "@" in rest:
            display, alias = rest.rsplit("@", 1)
            model = await self._find_model(display)
            number = (await self._pointers(model.name)).aliases.get(alias, 0)
            if not number:
                raise invalid(f"Registered model alias {alias} not found.")
        else:
            display, _, text = rest.rstrip("/").rpartition("/")
            if not text.isdigit():
                raise invalid(f"Source {source}: expected models:/<name>/<version> or models:/<name>@<alias>")
            number = int(text)
            model = await self._find_model(display)
        _, version = await self._version(display, number, model=model)
        return [SourceFile(f, None) for f in version.files]

    async def _upload(self, version: str, files: list[SourceFile]) -> None:
        local = [f for f in files if f.local is not None]
        if not local:
            c = self._c
            prepared = await c.call(
                c.versioning.PrepareUpload, versioning_pb2.PrepareUploadRequest(name=version)
            )
            if prepared.missing:
                raise invalid(
                    f"{len(prepared.missing)} blob(s) of the source version are missing from the store"
                )
            return
        from modelreg.client import transfer

        meter = transfer.Meter(False)
        await self.backend.versioning.upload(version, [f.local for f in local if f.local is not None], meter)

    async def update_model_version(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        number = _version_number(args)
        _, version = await self._version(name, number)
        if "description" in args:
            c = self._c
            version = await c.call(
                c.versioning.UpdateModelVersion,
                versioning_pb2.UpdateModelVersionRequest(
                    model_version=versioning_pb2.ModelVersion(
                        name=version.name, description=_string(args, "description", required=False)
                    ),
                    update_mask=FieldMask(paths=["description"]),
                    request_id=str(uuid.uuid4()),
                ),
            )
        return {"model_version": await self._render_version(name, version)}

    async def transition_model_version_stage(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        number = _version_number(args)
        stage_text = _string(args, "stage")
        if stage_text.lower() not in wire.STAGES:
            raise invalid(
                f"Invalid Model Version stage: {stage_text}. Value must be one of "
                f"{', '.join(wire.STAGES.values())}."
            )
        stage = wire.STAGES[stage_text.lower()]
        archive = args.get("archive_existing_versions") in (True, "true", "True", "1")
        model, _ = await self._version(name, number)
        pointers = await self._pointers(model.name)
        moves = {STAGE_POINTER[stage]: number}
        current = pointers.stages.get(STAGE_POINTER[stage], 0)
        if archive and stage in ("Staging", "Production") and current and current != number:
            moves["ARCHIVED"] = current
        await self._move(model.name, moves, f"transition_model_version_stage to {stage}")
        _, version = await self._version(name, number)
        return {"model_version": await self._render_version(name, version)}

    async def delete_model_version(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        number = _version_number(args)
        model, version = await self._version(name, number)
        pointers = await self._pointers(model.name)
        # MLflow deletes a version whatever points at it: its aliases and stage go with it.
        moves = {alias: 0 for alias, n in pointers.aliases.items() if n == number}
        moves |= {stage: 0 for stage, n in pointers.stages.items() if n == number}
        if number in pointers.archived_versions:
            moves["NONE"] = number
        if moves:
            await self._move(model.name, moves, f"delete_model_version {number}")
        c = self._c
        await c.call(
            c.versioning.DeleteModelVersion,
            versioning_pb2.DeleteModelVersionRequest(
                name=version.name, reason="deleted through MLflow's REST API", request_id=str(uuid.uuid4())
            ),
        )
        return {}

    async def get_model_version(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        _, version = await self._version(name, _version_number(args))
        return {"model_version": await self._render_version(name, version)}

    async def _set_version_tags(self, version: versioning_pb2.ModelVersion, tags: dict[str, str]) -> None:
        c = self._c
        await c.call(
            c.versioning.UpdateModelVersion,
            versioning_pb2.UpdateModelVersionRequest(
                model_version=versioning_pb2.ModelVersion(name=version.name, tags=tags),
                update_mask=FieldMask(paths=["tags"]),
                request_id=str(uuid.uuid4()),
            ),
        )

    async def set_model_version_tag(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        _, version = await self._version(name, _version_number(args))
        key = _clean_tag_key(_string(args, "key"), "key")
        await self._set_version_tags(version, {**version.tags, key: _string(args, "value", required=False)})
        return {}

    async def delete_model_version_tag(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _string(args, "name")
        _, version = await self._version(name, _version_number(args))
        key = _string(args, "key")
        if key in version.tags:
            await self._set_version_tags(version, {k: v for k, v in version.tags.items() if k != key})
        return {}

    async def search_model_versions(self, args: dict[str, Any]) -> dict[str, Any]:
        clauses = search.parse(
            _string(args, "filter", required=False),
            ("name", "version_number", "run_id", "source_path", "tag"),
        )
        # MLflow's own limits for a version search: 10,000 by default, at most 200,000.
        max_results = _max_results(args, 10_000, 200_000)
        orders = [_order_clause(text, VERSION_ORDER) for text in _order_by(args)]
        token = _string(args, "page_token", required=False)
        query = json.dumps([args.get("filter") or "", [list(o) for o in orders]])
        offset = _decode_offset(token, query) if token else 0
        names = [c for c in clauses if c.field == "name" and c.op in ("=", "IN")]
        if names:
            displays = sorted({str(v) for c in names for v in c.values})
            models = []
            for display in displays:
                try:
                    models.append(await self._find_model(display))
                except MlflowError:
                    continue
        else:
            models = await self._all_models()
        per_model = await asyncio.gather(
            *(asyncio.gather(self._versions(m.name), self._pointers(m.name)) for m in models)
        )
        rows: list[tuple[str, versioning_pb2.ModelVersion, promotion_pb2.Pointers]] = []
        for model, (versions, pointers) in zip(models, per_model, strict=True):
            display = self.display_of(model)
            for version in versions:
                if version.state == versioning_pb2.ModelVersion.STATE_DELETED:
                    continue
                attributes: dict[str, str | int] = {
                    "name": display,
                    "version_number": version.version,
                    "run_id": version.params.get(wire.RUN_ID_PARAM, ""),
                    "source_path": version.params.get(wire.SOURCE_PARAM, ""),
                }
                tags = {**version.tags, wire.SEMVER_TAG: version.semver}
                if search.matches(clauses, attributes, tags):
                    rows.append((display, version, pointers))

        # MLflow's default order: newest first by creation, then name and version.
        def key_of(row: tuple[str, versioning_pb2.ModelVersion, promotion_pb2.Pointers], field: str) -> Any:
            display, version, _ = row
            if field == "name":
                return display
            if field == "version_number":
                return version.version
            if field == "creation_timestamp":
                return wire.millis(version.create_time)
            return wire.millis(version.update_time)

        rows.sort(key=lambda r: (r[0], -r[1].version))
        for field, descending in reversed(orders or [("creation_timestamp", True)]):
            rows.sort(key=lambda r, f=field: key_of(r, f), reverse=descending)  # type: ignore[misc]
        page = rows[offset : offset + max_results]
        answer: dict[str, Any] = {"model_versions": [wire.model_version(d, v, p) for d, v, p in page]}
        if offset + max_results < len(rows):
            answer["next_page_token"] = _encode_offset(offset + max_results, query)
        return answer

    async def _all_models(self) -> list[catalog_pb2.RegisteredModel]:
        c = self._c
        request = catalog_pb2.ListRegisteredModelsRequest(parent=self._namespace, page_size=1000)
        return [
            m
            async for page in c.pages(c.catalog.ListRegisteredModels, request)
            for m in page.registered_models
        ]

    async def get_model_version_download_uri(self, args: dict[str, Any], base_url: str) -> dict[str, Any]:
        name = _string(args, "name")
        number = _version_number(args)
        model, _ = await self._version(name, number)
        model_id = model.name.rsplit("/", 1)[1]
        return {"artifact_uri": f"{base_url}{ARTIFACTS_PATH}/{model_id}/{number}"}

    async def version_by_model_id(self, model_id: str, number: int) -> versioning_pb2.ModelVersion:
        """For the artifact routes, whose URLs name the model by id (display names may hold `/`)."""
        model = await self._find_model_by_id(model_id)
        _, version = await self._version(self.display_of(model), number, model=model)
        return version


ARTIFACTS_PATH = "/mlflow-artifacts/artifacts/modelreg"
"""Where the gateway serves a version's files, in the shape of MLflow's artifact proxy, so
MLflow's HttpArtifactRepository lists (`?path=`) and downloads (`/<path>`) them."""


class SourceFile:
    """One file of a version to create: its manifest entry, and the local file when it must be uploaded."""

    def __init__(self, manifest: versioning_pb2.ArtifactFile, local: Any) -> None:
        self.manifest = manifest
        self.local = local


def model_id_for(name: str, *, suffixed: bool) -> str:
    """A resource id made from an MLflow name: lower case, runs of other characters as `-`,
    with a random suffix when asked (or when nothing usable is left)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:100]
    if not slug or not ID_PATTERN.fullmatch(slug):
        slug, suffixed = ("model-" + slug)[:100].rstrip("-._"), True
    return f"{slug}-{uuid.uuid4().hex[:8]}" if suffixed else slug


def scan(path: Path) -> list[SourceFile]:
    from modelreg.client import transfer

    files = transfer.scan(path, transfer.Meter(False))
    return [SourceFile(f.manifest_entry(), f) for f in files]


def _encode_offset(offset: int, query: str) -> str:
    digest = hashlib.sha256(query.encode()).hexdigest()[:16]
    raw = json.dumps({"o": offset, "q": digest}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_offset(token: str, query: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = int(data["o"])
        digest = str(data["q"])
    except (ValueError, KeyError, TypeError):
        raise invalid("Invalid page token, could not base64-decode") from None
    if digest != hashlib.sha256(query.encode()).hexdigest()[:16] or offset < 0:
        raise invalid("Invalid page token: it belongs to another search")
    return offset


__all__ = ["ARTIFACTS_PATH", "MlflowError", "MlflowRegistry"]

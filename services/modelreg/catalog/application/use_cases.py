"""The catalog's use cases: validate, decide through the log, read back."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from modelreg.catalog.application.ports import CatalogCommands, RegisteredModelReader, SearchQuery, SortValue
from modelreg.catalog.domain.model import (
    ArchiveRegisteredModel,
    CreateNamespace,
    CreateRegisteredModel,
    DeleteRegisteredModel,
    ModelState,
    Namespace,
    RegisteredModel,
    RestoreRegisteredModel,
    UpdateRegisteredModel,
    decide,
    decide_namespace,
)
from modelreg.catalog.domain.names import ModelName, check_id, parse_parent
from modelreg.catalog.domain.query import Ordering, SortKey, parse_filter, parse_order_by
from modelreg.errors import AlreadyExists, InvalidArgument, NotFound
from modelreg.eventlog import ConsistencyToken, EventContext

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

ModelCommand = UpdateRegisteredModel | ArchiveRegisteredModel | RestoreRegisteredModel | DeleteRegisteredModel


@dataclass(frozen=True, slots=True)
class Page:
    models: Sequence[RegisteredModel]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class NamespacePage:
    namespaces: Sequence[Namespace]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class Written:
    model: RegisteredModel
    token: ConsistencyToken


@dataclass(frozen=True, slots=True)
class WrittenNamespace:
    namespace: Namespace
    token: ConsistencyToken


@dataclass(frozen=True, slots=True)
class ListRequest:
    parent: str
    page_size: int = 0
    page_token: str = ""
    filter: str = ""
    order_by: str = ""
    show_deleted: bool = False


class Catalog:
    def __init__(self, reader: RegisteredModelReader, commands: CatalogCommands) -> None:
        self._reader = reader
        self._commands = commands

    async def create(self, command: CreateRegisteredModel, context: EventContext) -> Written:
        if not command.values.owners:
            # The registrant owns what they register unless they say otherwise;
            # it is recorded in the event, so the fold needs no default.
            command = replace(command, values=replace(command.values, owners=(context.actor,)))
        token = await self._ensure_namespace(command.name.namespace, context)
        result = await self._commands.run(str(command.name), context, lambda state: decide(state, command))
        token = result.token if token is None else token.merge(result.token)
        return Written(await self._read_back(command.name), token)

    async def _ensure_namespace(self, namespace: str, context: EventContext) -> ConsistencyToken | None:
        """Registers the namespace first when it does not exist: an implicit NamespaceCreated event."""
        if await self._reader.get_namespace(namespace) is not None:
            return None
        implicit = EventContext(
            actor=context.actor, correlation_id=context.correlation_id, causation_id=context.causation_id
        )
        command = CreateNamespace(namespace, implicit=True)
        try:
            result = await self._commands.run_namespace(
                f"namespaces/{namespace}", implicit, lambda state: decide_namespace(state, command)
            )
        except AlreadyExists:
            return None  # created concurrently: just as good
        return result.token

    async def update(self, command: ModelCommand, context: EventContext) -> Written:
        result = await self._commands.run(str(command.name), context, lambda state: decide(state, command))
        return Written(await self._read_back(command.name), result.token)

    async def _read_back(self, name: ModelName) -> RegisteredModel:
        model = await self._reader.get(name)
        if model is None:
            raise NotFound(f"{name} is not in the read model after its write was accepted")
        return model

    async def get(self, name: ModelName, show_deleted: bool = False) -> RegisteredModel:
        model = await self._reader.get(name)
        if model is None or (model.state is ModelState.DELETED and not show_deleted):
            raise NotFound(f"{name} does not exist")
        return model

    async def list(self, request: ListRequest) -> Page:
        namespace = parse_parent(request.parent)
        limit = page_limit(request.page_size)
        node = parse_filter(request.filter)
        ordering = parse_order_by(request.order_by)
        binding = _binding(namespace, request.filter, ordering, request.show_deleted)
        after = decode_page_token(request.page_token, binding, ordering) if request.page_token else None
        models = await self._reader.search(
            SearchQuery(namespace, node, ordering, after, request.show_deleted, limit + 1)
        )
        more = len(models) > limit
        models = models[:limit]
        next_token = encode_page_token(binding, _sort_values(models[-1], ordering)) if more else ""
        return Page(models, next_token)

    async def create_namespace(self, command: CreateNamespace, context: EventContext) -> WrittenNamespace:
        result = await self._commands.run_namespace(
            f"namespaces/{command.name}", context, lambda state: decide_namespace(state, command)
        )
        namespace = await self._reader.get_namespace(command.name)
        if namespace is None:
            raise NotFound(f"namespaces/{command.name} is not in the read model after its write was accepted")
        return WrittenNamespace(namespace, result.token)

    async def get_namespace(self, namespace: str) -> Namespace:
        found = await self._reader.get_namespace(namespace)
        if found is None:
            raise NotFound(f"namespaces/{namespace} does not exist")
        return found

    async def list_namespaces(self, page_size: int, page_token: str) -> NamespacePage:
        limit = page_limit(page_size)
        binding = "namespaces"
        after = None
        if page_token:
            (value,) = decode_page_token(page_token, binding, Ordering(((SortKey.NAME, False),)))
            after = check_id(str(value), "page_token")
        namespaces = await self._reader.list_namespaces(after=after, limit=limit + 1)
        more = len(namespaces) > limit
        namespaces = namespaces[:limit]
        return NamespacePage(namespaces, encode_page_token(binding, (namespaces[-1].name,)) if more else "")


def page_limit(page_size: int) -> int:
    if page_size < 0:
        raise InvalidArgument.of("page_size", "must not be negative")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _sort_values(model: RegisteredModel, ordering: Ordering) -> tuple[SortValue, ...]:
    values = {
        SortKey.NAME: model.name.model,
        SortKey.CREATE_TIME: model.create_time,
        SortKey.UPDATE_TIME: model.update_time,
    }
    return tuple(values[k] for k, _ in ordering.keys)


# Keyset pagination: the token holds the sort-key values of the last model
# served, so pages stay disjoint and complete while models are added. It is
# bound to a hash of everything that shapes the listing except page_size, so a
# token cannot silently continue a different query.
def _binding(namespace: str, filter_text: str, ordering: Ordering, show_deleted: bool) -> str:
    shape = json.dumps([namespace, filter_text, ordering.normalized(), show_deleted])
    return hashlib.sha256(shape.encode()).hexdigest()[:16]


def encode_page_token(binding: str, values: tuple[SortValue, ...]) -> str:
    encoded = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps({"v": 2, "q": binding, "k": encoded}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, binding: str, ordering: Ordering) -> tuple[SortValue, ...]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
        if not isinstance(data, dict) or data.get("v") != 2:
            raise ValueError("not a token")
        if data["q"] != binding:
            raise InvalidArgument.of(
                "page_token",
                "belongs to a different listing (parent, filter, order_by or show_deleted changed)",
            )
        raw = data["k"]
        if not isinstance(raw, list) or len(raw) != len(ordering.keys):
            raise ValueError("wrong arity")
        values: list[SortValue] = []
        for (key, _), value in zip(ordering.keys, raw, strict=True):
            if not isinstance(value, str):
                raise ValueError("not a string")
            values.append(value if key is SortKey.NAME else datetime.fromisoformat(value))
        return tuple(values)
    except InvalidArgument:
        raise
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise InvalidArgument.of("page_token", "is not a token returned by this list") from None

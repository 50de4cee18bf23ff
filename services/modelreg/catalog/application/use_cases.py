"""The catalog's use cases: validate, decide through the log, read back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from modelreg.access import may_read
from modelreg.catalog.application.ports import (
    ModelCommands,
    NamespaceCommands,
    RegisteredModelReader,
    SearchQuery,
)
from modelreg.catalog.domain.commands import (
    CreateNamespace,
    CreateRegisteredModel,
    ModelChange,
    UpdateRegisteredModel,
)
from modelreg.catalog.domain.decide import decide_model, decide_namespace
from modelreg.catalog.domain.filters import Ordering, SortKey, parse_filter, parse_order_by
from modelreg.catalog.domain.state import Namespace, RegisteredModel
from modelreg.catalog.domain.values import ModelState
from modelreg.errors import AlreadyExists, NotFound
from modelreg.eventlog import ConsistencyToken, EventContext
from modelreg.names import ModelName, check_id, parse_parent
from modelreg.paging import SortValue, page_request


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
    def __init__(
        self, reader: RegisteredModelReader, commands: ModelCommands, namespaces: NamespaceCommands
    ) -> None:
        self._reader = reader
        self._commands = commands
        self._namespaces = namespaces
        self._display_names: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def _display_name_free(self, name: ModelName, display_name: str) -> AsyncIterator[None]:
        """Holds the namespace's display-name lock while `display_name` is checked free for
        `name` and the command that takes it runs, so that two commands of this process never
        give one display name to two models. (Replicas of the catalog that race for the same
        name in the same instant are not serialised: the read model's holder is then the
        earlier model, and the later one answers ALREADY_EXISTS on its next rename.)"""
        if not display_name:
            yield
            return
        lock = self._display_names.setdefault(name.namespace, asyncio.Lock())
        async with lock:
            holder = await self._reader.display_name_holder(name.namespace, display_name)
            if holder is not None and holder != name:
                raise AlreadyExists(
                    f"display name {display_name[:256]!r} is taken by {holder} in namespaces/{name.namespace}"
                )
            yield

    async def create(self, command: CreateRegisteredModel, context: EventContext) -> Written:
        if not command.values.owners:
            # The registrant owns what they register unless they say otherwise;
            # it is recorded in the event, so the fold needs no default.
            command = replace(command, values=replace(command.values, owners=(context.actor,)))
        token = await self._ensure_namespace(command.name.namespace, context)
        async with self._display_name_free(command.name, command.values.display_name):
            result = await self._commands.run(
                str(command.name), context, lambda state: decide_model(state, command)
            )
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
            result = await self._namespaces.run(
                f"namespaces/{namespace}", implicit, lambda state: decide_namespace(state, command)
            )
        except AlreadyExists:
            return None  # created concurrently: just as good
        return result.token

    async def update(self, command: ModelChange, context: EventContext) -> Written:
        renamed = ""
        if isinstance(command, UpdateRegisteredModel) and "display_name" in command.paths:
            renamed = command.values.display_name
        async with self._display_name_free(command.name, renamed):
            result = await self._commands.run(
                str(command.name), context, lambda state: decide_model(state, command)
            )
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
        node = parse_filter(request.filter)
        ordering = parse_order_by(request.order_by)
        paging = page_request(
            request.page_size,
            request.page_token,
            [str if key in (SortKey.NAME, SortKey.DISPLAY_NAME) else datetime for key, _ in ordering.keys],
            parent=namespace,
            filter=request.filter,
            order_by=ordering.normalized(),
            show_deleted=request.show_deleted,
        )
        models = await self._reader.search(
            SearchQuery(namespace, node, ordering, paging.after, request.show_deleted, paging.fetch)
        )
        page = paging.page(models, lambda model: _sort_values(model, ordering))
        return Page(page.items, page.next_page_token)

    async def create_namespace(self, command: CreateNamespace, context: EventContext) -> WrittenNamespace:
        result = await self._namespaces.run(
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
        paging = page_request(page_size, page_token, [str], listing="namespaces")
        after = check_id(str(paging.after[0]), "page_token") if paging.after else None
        namespaces = await self._reader.list_namespaces(after=after, limit=paging.fetch)
        page = paging.page(namespaces, lambda namespace: (namespace.name,))
        # Only the namespaces the caller may read (RBAC); the page token still follows every row,
        # so a page may hold fewer than page_size.
        return NamespacePage([n for n in page.items if may_read(n.name)], page.next_page_token)


def _sort_values(model: RegisteredModel, ordering: Ordering) -> tuple[SortValue, ...]:
    values: dict[SortKey, SortValue] = {
        SortKey.NAME: model.name.model,
        SortKey.DISPLAY_NAME: model.fields.display_name,
        SortKey.CREATE_TIME: model.create_time,
        SortKey.UPDATE_TIME: model.update_time,
    }
    return tuple(values[k] for k, _ in ordering.keys)

"""The catalog's use cases: validate, decide through the log, read back."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from modelreg.catalog.application.ports import CatalogCommands, RegisteredModelReader
from modelreg.catalog.domain.model import CreateRegisteredModel, RegisteredModel, decide
from modelreg.catalog.domain.names import ModelName, check_id, parse_parent
from modelreg.errors import InvalidArgument, NotFound
from modelreg.eventlog import ConsistencyToken, EventContext

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Page:
    models: Sequence[RegisteredModel]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class Written:
    model: RegisteredModel
    token: ConsistencyToken


class Catalog:
    def __init__(self, reader: RegisteredModelReader, commands: CatalogCommands) -> None:
        self._reader = reader
        self._commands = commands

    async def create(self, command: CreateRegisteredModel, context: EventContext) -> Written:
        result = await self._commands.run(str(command.name), context, lambda state: decide(state, command))
        model = await self._reader.get(command.name)
        if model is None:
            raise NotFound(f"{command.name} was deleted before it could be read back")
        return Written(model, result.token)

    async def get(self, name: ModelName) -> RegisteredModel:
        model = await self._reader.get(name)
        if model is None:
            raise NotFound(f"{name} does not exist")
        return model

    async def list(self, parent: str, page_size: int, page_token: str) -> Page:
        namespace = parse_parent(parent)
        if page_size < 0:
            raise InvalidArgument.of("page_size", "must not be negative")
        limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = decode_page_token(page_token, namespace) if page_token else None
        models = await self._reader.list(namespace, after=after, limit=limit + 1)
        more = len(models) > limit
        models = models[:limit]
        next_token = encode_page_token(namespace, models[-1].name.model) if more else ""
        return Page(models, next_token)


# Keyset pagination: the token is the last id served, bound to its namespace,
# so pages stay disjoint and complete while models are being added.
def encode_page_token(namespace: str, last_model: str) -> str:
    return base64.urlsafe_b64encode(f"v1/{namespace}/{last_model}".encode()).decode()


def decode_page_token(token: str, namespace: str) -> str:
    try:
        version, token_namespace, last_model = base64.urlsafe_b64decode(token.encode()).decode().split("/")
        check_id(last_model, "page_token")
    except (binascii.Error, UnicodeDecodeError, ValueError, InvalidArgument):
        raise InvalidArgument.of("page_token", "is not a token returned by this list") from None
    if version != "v1" or token_namespace != namespace:
        raise InvalidArgument.of("page_token", "belongs to a different listing")
    return last_model

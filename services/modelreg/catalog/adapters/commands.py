"""CatalogCommands over the shared command executor."""

from __future__ import annotations

from collections.abc import Callable

from modelreg.catalog.adapters import codec
from modelreg.catalog.adapters.postgres import PostgresCatalogReader
from modelreg.catalog.domain.model import CatalogEvent, Namespace, RegisteredModel
from modelreg.commands.executor import Command, CommandExecutor, CommandResult
from modelreg.eventlog import EventContext


class LoggedCatalogCommands:
    def __init__(self, executor: CommandExecutor, reader: PostgresCatalogReader) -> None:
        self._executor = executor
        self._reader = reader

    async def run(
        self, stream: str, context: EventContext, decide: Callable[[RegisteredModel | None], CatalogEvent]
    ) -> CommandResult:
        return await self._executor.execute(
            Command(
                stream=stream,
                context=context,
                load=self._reader.load,
                decide=lambda state: codec.encode(decide(state)),
            )
        )

    async def run_namespace(
        self, stream: str, context: EventContext, decide: Callable[[Namespace | None], CatalogEvent]
    ) -> CommandResult:
        return await self._executor.execute(
            Command(
                stream=stream,
                context=context,
                load=self._reader.load_namespace,
                decide=lambda state: codec.encode(decide(state)),
            )
        )

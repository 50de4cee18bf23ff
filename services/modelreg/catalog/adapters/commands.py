"""CatalogCommands over the shared command executor."""

from __future__ import annotations

from modelreg.catalog.adapters import codec
from modelreg.catalog.adapters.postgres import PostgresCatalogReader
from modelreg.catalog.application.ports import DecideFn
from modelreg.eventlog import EventContext
from modelreg.projections.commands import Command, CommandExecutor, CommandResult


class LoggedCatalogCommands:
    def __init__(self, executor: CommandExecutor, reader: PostgresCatalogReader) -> None:
        self._executor = executor
        self._reader = reader

    async def run(self, stream: str, context: EventContext, decide: DecideFn) -> CommandResult:
        return await self._executor.execute(
            Command(
                stream=stream,
                context=context,
                load=self._reader.load,
                decide=lambda state: codec.encode(decide(state)),
            )
        )

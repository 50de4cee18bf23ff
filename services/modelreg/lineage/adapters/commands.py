"""LineageCommands over the shared command executor."""

from __future__ import annotations

from collections.abc import Callable

from modelreg.commands.executor import Command, CommandExecutor, CommandResult
from modelreg.eventlog import EventContext
from modelreg.lineage.adapters import codec
from modelreg.lineage.adapters.postgres import PostgresLineageReader
from modelreg.lineage.domain.model import LineageEvent, RecordState


class LoggedLineageCommands:
    def __init__(self, executor: CommandExecutor, reader: PostgresLineageReader) -> None:
        self._executor = executor
        self._reader = reader

    async def append(
        self, stream: str, context: EventContext, decide: Callable[[], LineageEvent]
    ) -> CommandResult:
        return await self._executor.execute(
            Command(
                stream=stream,
                context=context,
                load=self._reader.load_head,
                decide=lambda _: codec.encode(decide()),
                append_only=True,
            )
        )

    async def supersede(
        self,
        stream: str,
        record_id: str,
        context: EventContext,
        decide: Callable[[RecordState | None], LineageEvent],
    ) -> CommandResult:
        async def load(s: str):  # type: ignore[no-untyped-def]
            return await self._reader.load_record(s, record_id)

        return await self._executor.execute(
            Command(
                stream=stream, context=context, load=load, decide=lambda state: codec.encode(decide(state))
            )
        )

"""PromotionCommands over the shared command executor."""

from __future__ import annotations

from collections.abc import Callable

from modelreg.commands.executor import Command, CommandExecutor, CommandResult
from modelreg.eventlog import EventContext
from modelreg.promotion.adapters import codec
from modelreg.promotion.adapters.postgres import PostgresPromotionReader
from modelreg.promotion.domain.model import Aggregate, PromotionEvent


class LoggedPromotionCommands:
    def __init__(self, executor: CommandExecutor, reader: PostgresPromotionReader) -> None:
        self._executor = executor
        self._reader = reader

    async def run(
        self, stream: str, context: EventContext, decide: Callable[[Aggregate], PromotionEvent]
    ) -> CommandResult:
        return await self._executor.execute(
            Command(
                stream=stream,
                context=context,
                load=self._reader.load,
                decide=lambda state: codec.encode(decide(state)),
            )
        )

    async def append(self, stream: str, context: EventContext, event: PromotionEvent) -> CommandResult:
        """An append-only fact (a policy of a namespace, a denial): valid whatever the stream holds."""
        return await self._executor.execute(
            Command(
                stream=stream,
                context=context,
                load=self._reader.load_head,
                decide=lambda _: codec.encode(event),
                append_only=True,
            )
        )

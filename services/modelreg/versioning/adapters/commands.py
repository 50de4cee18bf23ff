"""Versioning commands over the shared command executor."""

from __future__ import annotations

from modelreg.commands.executor import Command, CommandExecutor, CommandResult
from modelreg.eventlog import EventContext
from modelreg.versioning.adapters import codec
from modelreg.versioning.adapters.postgres import PostgresVersionReader
from modelreg.versioning.domain.model import Command as DomainCommand
from modelreg.versioning.domain.model import ModelVersions, decide


class LoggedVersionCommands:
    def __init__(self, executor: CommandExecutor, reader: PostgresVersionReader) -> None:
        self._executor = executor
        self._reader = reader

    async def run(self, model: str, context: EventContext, command: DomainCommand) -> CommandResult:
        def decide_encoded(state: ModelVersions) -> tuple[str, object]:
            return codec.encode(model, decide(state, command))

        # Only the version the command names is read in full (see load_for).
        number = getattr(command, "number", None)

        def load(stream: str):  # type: ignore[no-untyped-def]
            return self._reader.load_for(stream, number)

        return await self._executor.execute(
            Command(stream=model, context=context, load=load, decide=decide_encoded)  # type: ignore[arg-type]
        )

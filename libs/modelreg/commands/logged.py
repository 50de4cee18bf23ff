"""The Commands port over the shared executor: what the four services' command adapters had in common."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from modelreg.commands.contracts import CommandResult, Loaded
from modelreg.commands.executor import Command, CommandExecutor
from modelreg.eventlog import EventContext

State = TypeVar("State")
Event = TypeVar("Event")
Payload = tuple[str, Message]
"""(envelope payload field, payload message)."""


class LoggedCommands(Generic[State, Event]):
    """Commands on one kind of stream, appended to the log through the executor.

    The state a command decides on is read by `load(stream)`, or by `load_part(stream, part)` where
    only the part the command names is read in full (`part` is None when it names none). `append`
    reads only the stream head, with `load_head` when given. An event is encoded by `encode(event)`,
    or by `encode_on(stream, event)` where the payload names the stream.
    """

    def __init__(
        self,
        executor: CommandExecutor,
        *,
        load: Callable[[str], Awaitable[Loaded[State]]] | None = None,
        load_part: Callable[[str, Any], Awaitable[Loaded[State]]] | None = None,
        load_head: Callable[[str], Awaitable[Loaded[Any]]] | None = None,
        encode: Callable[[Event], Payload] | None = None,
        encode_on: Callable[[str, Event], Payload] | None = None,
    ) -> None:
        self._executor = executor
        self._load = load
        self._load_part = load_part
        self._load_head = load_head or load
        self._encode = encode
        self._encode_on = encode_on

    async def run(
        self, stream: str, context: EventContext, decide: Callable[[State], Event], *, part: object = None
    ) -> CommandResult:
        load_part = self._load_part
        load = self._load if load_part is None else (lambda s: load_part(s, part))
        assert load is not None, "this stream is append-only"
        return await self._executor.execute(
            Command(
                stream=stream,
                context=context,
                load=load,
                decide=lambda state: self._payload(stream, decide(state)),
            )
        )

    async def append(self, stream: str, context: EventContext, event: Event) -> CommandResult:
        assert self._load_head is not None, "append needs load_head or load"
        return await self._executor.execute(
            Command(
                stream=stream,
                context=context,
                load=self._load_head,
                decide=lambda _: self._payload(stream, event),
                append_only=True,
            )
        )

    async def original(self, stream: str, context: EventContext) -> CommandResult | None:
        return await self._executor.original(stream, context)

    def _payload(self, stream: str, event: Event) -> Payload:
        if self._encode_on is not None:
            return self._encode_on(stream, event)
        assert self._encode is not None
        return self._encode(event)

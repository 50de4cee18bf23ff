"""The command path's results, free of any client library, for use cases to depend on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from modelreg.eventlog import ConsistencyToken, EventContext, Outcome, StreamHead

State = TypeVar("State")


@dataclass(frozen=True, slots=True)
class Loaded(Generic[State]):
    """An aggregate as the read model holds it, with its stream head, read in one snapshot."""

    state: State
    head: StreamHead


@dataclass(frozen=True, slots=True)
class CommandResult:
    event_id: str
    revision: int
    token: ConsistencyToken
    replayed: bool
    """True when the request_id had already been carried out: nothing new happened."""


@dataclass(frozen=True, slots=True)
class LocalVerdict:
    """What a projector's fold_appended learned of a record this process appended."""

    folded: bool
    """Folded and committed: by this call, a neighbour's, or the consumer."""
    outcome: Outcome | None = None
    """Its outcome, when this process judged it (otherwise read it from event_outcomes)."""


StateT_co = TypeVar("StateT_co", covariant=True)
EventT_contra = TypeVar("EventT_contra", contravariant=True)


class Commands(Protocol[StateT_co, EventT_contra]):
    """The command port of a use case, for one kind of stream (modelreg.commands.logged implements it)."""

    async def run(
        self,
        stream: str,
        context: EventContext,
        decide: Callable[[StateT_co], EventT_contra],
        *,
        part: object = None,
    ) -> CommandResult:
        """Decides against the stream's current state, appends expecting the revision it was read at,
        awaits the verdict; retries conflicts. `part` names what of the stream the command is about
        (a version number, a record id), for streams that read only that part in full."""

    async def append(self, stream: str, context: EventContext, event: EventT_contra) -> CommandResult:
        """Appends a fact that holds whatever the stream holds, at ANY revision, and awaits its verdict."""

    async def original(self, stream: str, context: EventContext) -> CommandResult | None:
        """The result of the context's request_id on the stream, if it was already carried out: a use
        case that checks state before `run` asks this first, so a retry gets the original answer."""

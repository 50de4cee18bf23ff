"""The command path's results, free of any client library, for use cases to depend on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from modelreg.eventlog import ConsistencyToken, Outcome, StreamHead

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

"""What the catalog's use cases need from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from modelreg.catalog.domain.model import CatalogEvent, RegisteredModel
from modelreg.catalog.domain.names import ModelName
from modelreg.eventlog import EventContext
from modelreg.projections.contracts import CommandResult, Loaded


class RegisteredModelReader(Protocol):
    async def load(self, stream: str) -> Loaded[RegisteredModel | None]:
        """The model with its stream head, read in one snapshot, for deciding a command."""

    async def get(self, name: ModelName) -> RegisteredModel | None: ...

    async def list(self, namespace: str, *, after: str | None, limit: int) -> Sequence[RegisteredModel]:
        """Models of a namespace in name order, starting after the model id `after`."""


class DecideFn(Protocol):
    def __call__(self, state: RegisteredModel | None) -> CatalogEvent: ...


class CatalogCommands(Protocol):
    async def run(self, stream: str, context: EventContext, decide: DecideFn) -> CommandResult:
        """Decides against the current state, appends, awaits the verdict; retries conflicts."""

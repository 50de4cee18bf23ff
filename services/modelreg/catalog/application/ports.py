"""What the catalog's use cases need from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from modelreg.catalog.domain.events import Event
from modelreg.catalog.domain.filters import Ordering
from modelreg.catalog.domain.state import Namespace, RegisteredModel
from modelreg.commands.contracts import Commands, Loaded
from modelreg.filtering import Node
from modelreg.names import ModelName
from modelreg.paging import SortValue


@dataclass(frozen=True, slots=True)
class SearchQuery:
    namespace: str
    filter: Node | None
    ordering: Ordering
    after: tuple[SortValue, ...] | None
    """The sort-key values of the last model already served (keyset pagination)."""
    show_deleted: bool
    limit: int


class RegisteredModelReader(Protocol):
    async def load(self, stream: str) -> Loaded[RegisteredModel | None]:
        """The model with its stream head, read in one snapshot, for deciding a command."""

    async def load_namespace(self, stream: str) -> Loaded[Namespace | None]:
        """The namespace with its stream head, read in one snapshot."""

    async def get(self, name: ModelName) -> RegisteredModel | None:
        """The model in any state, deleted included."""

    async def get_namespace(self, namespace: str) -> Namespace | None: ...

    async def search(self, query: SearchQuery) -> Sequence[RegisteredModel]:
        """Models matching the query, in its order, after `query.after`, at most `limit`."""

    async def list_namespaces(self, *, after: str | None, limit: int) -> Sequence[Namespace]:
        """Namespaces in name order, starting after the id `after`."""

    async def display_name_holder(self, namespace: str, display_name: str) -> ModelName | None:
        """The model of the namespace, not deleted, whose display name this is."""


ModelCommands = Commands[RegisteredModel | None, Event]
NamespaceCommands = Commands[Namespace | None, Event]

"""What the promotion use cases need from the outside world."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from modelreg.commands.contracts import Commands
from modelreg.filtering import Node
from modelreg.paging import Keyset
from modelreg.promotion.domain.events import AccessDenied, Event
from modelreg.promotion.domain.queries import DeploymentRevision, HistoryEntry
from modelreg.promotion.domain.state import Aggregate, Pointers, Request
from modelreg.promotion.domain.values import Policy, Report, VersionFacts


class PromotionReader(Protocol):
    async def pointers(self, model: str) -> Pointers: ...

    async def pointers_as_of(self, model: str, time: datetime) -> Pointers:
        """The pointers after every transition applied at or before `time`."""

    async def request(self, name: str) -> Request | None: ...

    async def request_by_event(self, event_id: str) -> Request | None:
        """The request an accepted event created (or created and applied)."""

    async def requests(
        self, model: str, state: str | None, after: Keyset | None, limit: int, where: Node | None = None
    ) -> list[tuple[int, Request]]:
        """(creation revision, request) matching `where`, newest first, created before the keyset
        `after` (revision,)."""

    async def history(
        self, model: str, pointer: str | None, after: Keyset | None, limit: int, where: Node | None = None
    ) -> list[tuple[int, HistoryEntry]]:
        """(revision, entry), newest first, before the keyset `after` (revision,)."""

    async def policy(self, parent: str) -> Policy | None: ...

    async def reports(self, model: str) -> dict[str, Report]:
        """The last acknowledgement of each environment of the model."""

    async def deployment_revision(
        self, model: str, environment: str, revision: int
    ) -> DeploymentRevision | None:
        """An applied revision of an environment, from the history."""

    async def effective_policy(self, model: str) -> tuple[str, Policy | None]: ...

    async def denials(
        self, namespace: str, after: Keyset | None, limit: int, where: Node | None = None
    ) -> list[tuple[int, AccessDenied, datetime]]:
        """(revision, denial, when), newest first, before the keyset `after` (revision,)."""

    async def checkpoints(self, topic: str) -> dict[int, int]:
        """partition -> next offset projected, committed together with the rows."""

    async def transitions_between(
        self, topic: str, parent: str, ranges: Mapping[int, tuple[int, int]]
    ) -> list[tuple[int, int, HistoryEntry]]:
        """(partition, offset, entry) of the applied transitions in [lo, hi) per partition."""


class VersionFactsReader(Protocol):
    """The reference caches of versioning and lineage facts."""

    async def facts(self, model: str, versions: Sequence[int]) -> dict[int, VersionFacts]: ...


PromotionCommands = Commands[Aggregate, Event]
"""Appends are the facts of a namespace (a policy, a denial), valid whatever the stream holds."""


class Progress(Protocol):
    async def wait_for(self, required: Mapping[tuple[str, int], int], timeout: float) -> bool:
        """True once every (topic, partition) is projected up to its offset."""

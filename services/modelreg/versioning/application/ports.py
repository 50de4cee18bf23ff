"""What the versioning use cases need from the outside world."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from modelreg.commands.contracts import Commands, Loaded
from modelreg.filtering import Node
from modelreg.paging import Keyset
from modelreg.versioning.domain.events import Event
from modelreg.versioning.domain.state import ModelVersion, ModelVersions


class VersionReader(Protocol):
    async def load(self, stream: str) -> Loaded[ModelVersions]:
        """Every version of the model with the stream head, read in one snapshot."""

    async def version(
        self,
        model: str,
        *,
        number: int | None = None,
        revision: int | None = None,
        pointer: str | None = None,
    ) -> ModelVersion | None:
        """One version, by number, by the stream revision of its creation, or by the stage or
        alias (promotion cache) that names it."""

    async def versions_as_of(self, model: str, time: datetime, number: int | None = None) -> ModelVersions:
        """The model's versions, or only version `number`, as they stood at `time` (from the
        history of their states; those created later are absent)."""

    async def model_state(self, model: str) -> str | None:
        """From the catalog cache: "active", "archived", "deleted", or None if never seen."""

    async def pointers(self, model: str) -> dict[str, int]:
        """From the promotion cache: stage or alias -> version number."""

    async def referenced_blobs(self) -> set[str]:
        """Digests in the manifest of any version that is not deleted."""

    async def list_versions(
        self,
        model: str,
        *,
        after: Keyset | None,
        limit: int,
        show_deleted: bool,
        where: Node | None = None,
    ) -> list[ModelVersion]:
        """Versions that match `where`, newest first, numbered below the keyset `after` (number,)."""


VersionCommands = Commands[ModelVersions, Event]
"""On a model's stream; `part` is the number of the version a command names."""

"""What the audit use cases need from storage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from modelreg import filtering
from modelreg.audit.domain.entry import AuditEntry, StoredCheckpoint
from modelreg.paging import Keyset


class AuditReader(Protocol):
    async def list_entries(
        self,
        *,
        namespace: str,
        where: filtering.Node | None,
        after: Keyset | None,
        limit: int,
    ) -> Sequence[AuditEntry]:
        """Entries of `namespace` ("" for all) matching `where`, in trail order, strictly after `after`."""
        ...


class CheckpointReader(Protocol):
    async def latest_checkpoints(self) -> Sequence[StoredCheckpoint]:
        """The newest checkpoint of every audited topic-partition that has one."""
        ...

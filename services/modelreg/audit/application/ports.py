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

    async def checkpoint_chain(self, topic: str, partition: int) -> Sequence[StoredCheckpoint]:
        """Every checkpoint of one partition, in size order."""
        ...

    async def leaf_hashes(self, topic: str, partition: int, size: int) -> Sequence[bytes]:
        """The leaf hashes of the partition's first `size` accepted events."""
        ...

    async def stream_counts(self, topic: str, partition: int, size: int) -> dict[str, int]:
        """Per stream of the partition, its accepted events among the first `size`."""
        ...

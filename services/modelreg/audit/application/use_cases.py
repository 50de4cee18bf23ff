"""The audit use cases: reading the trail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from modelreg.audit.application.ports import AuditReader, CheckpointReader
from modelreg.audit.domain import filters
from modelreg.audit.domain.entry import AuditEntry, SigningKeyInfo, StoredCheckpoint
from modelreg.names import parse_parent
from modelreg.paging import Page, page_request

DEFAULT_PAGE_SIZE = 100


class Audit:
    def __init__(
        self,
        reader: AuditReader,
        checkpoints: CheckpointReader,
        keys: Sequence[SigningKeyInfo] = (),
    ) -> None:
        self._reader = reader
        self._checkpoints = checkpoints
        self._keys = list(keys)

    def keys(self) -> list[SigningKeyInfo]:
        return list(self._keys)

    async def latest_checkpoints(self) -> Sequence[StoredCheckpoint]:
        return await self._checkpoints.latest_checkpoints()

    async def list_entries(
        self, parent: str, filter_text: str = "", page_size: int = 0, page_token: str = ""
    ) -> Page[AuditEntry]:
        """The trail of namespace `parent` (`namespaces/{ns}`; "" for every namespace), in time order."""
        namespace = parse_parent(parent) if parent else ""
        where = filters.parse_filter(filter_text)
        paging = page_request(
            page_size,
            page_token,
            [datetime, str, int, int],
            default_size=DEFAULT_PAGE_SIZE,
            parent=parent,
            filter=filter_text,
        )
        rows = await self._reader.list_entries(
            namespace=namespace, where=where, after=paging.after, limit=paging.fetch
        )
        return paging.page(rows, lambda entry: entry.sort_key)

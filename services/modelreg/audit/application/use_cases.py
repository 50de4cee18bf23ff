"""The audit use cases: reading the trail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelreg.audit.application.ports import AuditReader, CheckpointReader
from modelreg.audit.domain import filters
from modelreg.audit.domain.entry import AuditEntry, SigningKeyInfo, StoredCheckpoint
from modelreg.auditlog.bundle import ExportEvent, Partition, build_bundle, rfc3339
from modelreg.auditlog.checkpoint import Checkpoint, SignedCheckpoint, Signer
from modelreg.errors import FailedPrecondition
from modelreg.names import parse_parent
from modelreg.paging import Page, page_request

DEFAULT_PAGE_SIZE = 100


EXPORT_PAGE = 5000


class Audit:
    def __init__(
        self,
        reader: AuditReader,
        checkpoints: CheckpointReader,
        keys: Sequence[SigningKeyInfo] = (),
        signer: Signer | None = None,
        public_keys: Mapping[str, Ed25519PublicKey] | None = None,
    ) -> None:
        self._reader = reader
        self._checkpoints = checkpoints
        self._keys = list(keys)
        self._signer = signer
        self._public_keys = dict(public_keys or {})

    async def export(self, parent: str, filter_text: str = "") -> dict[str, bytes]:
        """The files of an export bundle of the trail that ListAuditEvents(parent, filter)
        shows, as far as the newest checkpoint of each partition covers it."""
        if self._signer is None:
            raise FailedPrecondition("the audit service has no signing key (MODELREG_AUDIT_SIGNING_KEY)")
        namespace = parse_parent(parent) if parent else ""
        where = filters.parse_filter(filter_text)
        entries: list[AuditEntry] = []
        after = None
        while True:
            page = await self._reader.list_entries(
                namespace=namespace, where=where, after=after, limit=EXPORT_PAGE
            )
            entries.extend(page)
            if len(page) < EXPORT_PAGE:
                break
            after = page[-1].sort_key
        partitions = []
        for topic, partition in sorted({(e.topic, e.partition) for e in entries}):
            chain = await self._checkpoints.checkpoint_chain(topic, partition)
            if not chain:
                continue
            size = chain[-1].size
            partitions.append(
                Partition(
                    topic,
                    partition,
                    [SignedCheckpoint(Checkpoint.parse(c.body), c.signature) for c in chain],
                    await self._checkpoints.leaf_hashes(topic, partition, size),
                    await self._checkpoints.stream_counts(topic, partition, size),
                )
            )
        covered = {(p.topic, p.partition): p.checkpoints[-1].checkpoint.size for p in partitions}
        events = [
            ExportEvent(_export_fields(e), e.record)
            for e in entries
            if e.leaf_index < covered.get((e.topic, e.partition), 0)
        ]
        return build_bundle(
            events,
            partitions,
            self._signer,
            self._public_keys,
            filter_={"parent": parent, "filter": filter_text},
            left_out=len(entries) - len(events),
            created=datetime.now(UTC),
        )

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


def _export_fields(e: AuditEntry) -> dict[str, object]:
    return {
        "event_id": e.event_id,
        "occur_time": rfc3339(e.occurred_at),
        "actor": e.actor,
        "action": e.action,
        "event_type": e.event_type,
        "resource": e.resource,
        "namespace": e.namespace,
        "model": e.model,
        "request_id": e.request_id,
        "correlation_id": e.correlation_id,
        "causation_id": e.causation_id,
        "comment": e.comment,
        "changes": e.changes,
        "source": e.source,
        "revision": e.revision,
        "topic": e.topic,
        "partition": e.partition,
        "offset": e.offset,
        "leaf_index": e.leaf_index,
        "stream": e.stream,
        "prev_hash": e.prev_hash.hex(),
        "hash": e.hash.hex(),
    }

"""Reading the audit trail from PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from modelreg import filtering
from modelreg.audit.adapters import filter_columns
from modelreg.audit.adapters.projection import COLUMNS, FIELDS
from modelreg.audit.domain import filters
from modelreg.audit.domain.entry import AuditEntry, StoredCheckpoint
from modelreg.paging import Keyset
from modelreg.projections.schema import quote_schema

ORDER = '(occurred_at, topic COLLATE "C", partition, "offset")'


class PostgresAuditReader:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._schema = quote_schema(schema)
        self._table = f"{self._schema}.audit_events"

    async def list_entries(
        self,
        *,
        namespace: str,
        where: filtering.Node | None,
        after: Keyset | None,
        limit: int,
    ) -> Sequence[AuditEntry]:
        params: list[object] = []
        conditions = []
        if namespace:
            params.append(namespace)
            conditions.append(f"namespace = ${len(params)}")
        if after is not None:
            params.extend(after)
            n = len(params)
            keyset = f"(${n - 3}::timestamptz, ${n - 2}::text, ${n - 1}::int, ${n}::bigint)"
            conditions.append(f"{ORDER} > {keyset}")
        if where is not None:
            conditions.append(filtering.compile_filter(where, filters.FILTER, filter_columns.FILTER, params))
        params.append(limit)
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM {self._table}"
            + (" WHERE " + " AND ".join(f"({c})" for c in conditions) if conditions else "")
            + f' ORDER BY occurred_at, topic COLLATE "C", partition, "offset" LIMIT ${len(params)}'
        )
        rows = await self._pool.fetch(sql, *params)
        return [_entry(row) for row in rows]

    async def latest_checkpoints(self) -> Sequence[StoredCheckpoint]:
        rows = await self._pool.fetch(
            "SELECT DISTINCT ON (topic, partition) topic, partition, size, root, previous, sign_time,"
            f" key_id, body, signature FROM {self._schema}.signed_checkpoints"
            " ORDER BY topic, partition, size DESC"
        )
        return [_checkpoint(r) for r in rows]

    async def checkpoint_chain(self, topic: str, partition: int) -> Sequence[StoredCheckpoint]:
        rows = await self._pool.fetch(
            "SELECT topic, partition, size, root, previous, sign_time, key_id, body, signature"
            f" FROM {self._schema}.signed_checkpoints WHERE topic = $1 AND partition = $2 ORDER BY size",
            topic,
            partition,
        )
        return [_checkpoint(r) for r in rows]

    async def leaf_hashes(self, topic: str, partition: int, size: int) -> Sequence[bytes]:
        rows = await self._pool.fetch(
            f"SELECT sha256('\\x00'::bytea || record) AS leaf FROM {self._table}"
            " WHERE topic = $1 AND partition = $2 AND leaf_index < $3 ORDER BY leaf_index",
            topic,
            partition,
            size,
        )
        return [bytes(r["leaf"]) for r in rows]

    async def stream_counts(self, topic: str, partition: int, size: int) -> dict[str, int]:
        rows = await self._pool.fetch(
            f"SELECT stream, count(*) AS n FROM {self._table}"
            " WHERE topic = $1 AND partition = $2 AND leaf_index < $3 GROUP BY stream",
            topic,
            partition,
            size,
        )
        return {r["stream"]: r["n"] for r in rows}


def _checkpoint(r: asyncpg.Record) -> StoredCheckpoint:
    return StoredCheckpoint(
        r["topic"],
        r["partition"],
        r["size"],
        bytes(r["root"]),
        bytes(r["previous"]),
        r["sign_time"],
        r["key_id"],
        bytes(r["body"]),
        bytes(r["signature"]),
    )


def _entry(row: asyncpg.Record) -> AuditEntry:
    values = dict(zip(FIELDS, row, strict=True))
    values["event_id"] = str(values["event_id"])
    values["prev_hash"] = bytes(values["prev_hash"])
    values["hash"] = bytes(values["hash"])
    values["record"] = bytes(values["record"])
    return AuditEntry(**values)

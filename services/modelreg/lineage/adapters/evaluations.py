"""Reads of the evaluations tables: the version health a PRODUCTION judgement decides on, and the
evaluations, comparisons and thresholds the API returns."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import asyncpg

from modelreg.commands.contracts import Loaded
from modelreg.eventlog import head_of
from modelreg.filtering import Node, compile_filter
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from modelreg.lineage.adapters import filter_columns
from modelreg.lineage.domain import filters
from modelreg.lineage.domain.evaluations import StoredEvaluation, Threshold, VersionHealth
from modelreg.lineage.resources import evaluation_from_proto, threshold_from_proto
from modelreg.paging import Keyset
from modelreg.projections.schema import quote_schema

COLUMNS = "id::text AS id, version, body, creator, create_time, degraded"


def _stored(row: Mapping[str, object]) -> StoredEvaluation:
    message = pb.ModelEvaluation.FromString(row["body"])  # type: ignore[arg-type]
    version = str(row["version"])
    return StoredEvaluation(
        str(row["id"]),
        evaluation_from_proto(message, version),
        str(row["creator"]),
        row["create_time"],  # type: ignore[arg-type]
        tuple(row["degraded"]),  # type: ignore[arg-type]
    )


def _thresholds(body: bytes | None) -> tuple[Threshold, ...]:
    if body is None:
        return ()
    return tuple(threshold_from_proto(t) for t in pb.DegradationThresholds.FromString(body).thresholds)


class PostgresEvaluationReader:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._s = s = quote_schema(schema)
        self._health_sql = (
            "SELECT h.revision AS head_revision, h.hash AS head_hash, t.body AS thresholds,"
            f" (SELECT array_agg(b.metric ORDER BY b.metric) FROM {s}.evaluation_breaches b"
            "   WHERE b.version = $2) AS breaching"
            " FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
            f" LEFT JOIN {s}.degradation_thresholds t ON t.model = wanted.stream"
        )

    async def load_health(self, stream: str, version: str) -> Loaded[VersionHealth]:
        """The model's thresholds, the version's breaching metrics and the stream head, in one snapshot."""
        row = await self._pool.fetchrow(self._health_sql, stream, version)
        assert row is not None
        health = VersionHealth(_thresholds(row["thresholds"]), frozenset(row["breaching"] or ()))
        return Loaded(health, head_of(row["head_revision"], row["head_hash"]))

    async def thresholds(self, model: str) -> tuple[Threshold, ...]:
        body = await self._pool.fetchval(
            f"SELECT body FROM {self._s}.degradation_thresholds WHERE model = $1", model
        )
        return _thresholds(body)

    async def evaluation(self, evaluation_id: str) -> StoredEvaluation | None:
        row = await self._pool.fetchrow(
            f"SELECT {COLUMNS} FROM {self._s}.evaluations WHERE id = $1::uuid", evaluation_id
        )
        return _stored(row) if row else None

    async def evaluations(
        self,
        model: str,
        version: str | None,
        where: Node | None,
        descending: bool,
        after: Keyset | None,
        limit: int,
    ) -> list[StoredEvaluation]:
        params: list[object] = [model, version, limit]
        clauses = ["model = $1", "($2::text IS NULL OR version = $2)"]
        if after is not None:
            params += [after[0], after[1]]
            op = "<" if descending else ">"
            clauses.append(
                f"(evaluate_time, id) {op} (${len(params) - 1}::timestamptz, ${len(params)}::uuid)"
            )
        if where is not None:
            clauses.append(
                f"({compile_filter(where, filters.EVALUATIONS, filter_columns.EVALUATIONS, params)})"
            )
        direction = "DESC" if descending else "ASC"
        rows = await self._pool.fetch(
            f"SELECT {COLUMNS} FROM {self._s}.evaluations WHERE {' AND '.join(clauses)}"
            f" ORDER BY evaluate_time {direction}, id {direction} LIMIT $3",
            *params,
        )
        return [_stored(r) for r in rows]

    async def newest_on(self, version: str, dataset_uri: str, dataset_digest: str) -> StoredEvaluation | None:
        row = await self._pool.fetchrow(
            f"SELECT {COLUMNS} FROM {self._s}.evaluations WHERE version = $1 AND dataset_uri = $2"
            " AND ($3 = '' OR dataset_digest = $3) ORDER BY evaluate_time DESC, id DESC LIMIT 1",
            version,
            dataset_uri,
            dataset_digest,
        )
        return _stored(row) if row else None


def now() -> datetime:
    return datetime.now(UTC)

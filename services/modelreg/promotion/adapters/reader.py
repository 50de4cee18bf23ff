"""Reads of the promotion tables and the reference caches: the aggregates commands decide on, and the
resources, lists (filtered and paged) and history the API returns."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

import asyncpg

from modelreg.commands.contracts import Loaded
from modelreg.eventlog import EMPTY_HEAD, head_of
from modelreg.filtering import Node, Schema, compile_filter
from modelreg.paging import Keyset
from modelreg.projections.schema import quote_schema
from modelreg.promotion.adapters import filter_columns
from modelreg.promotion.adapters.schema import (
    aggregate_from_row,
    history_entry_from_body,
    pointers_from_row,
    policy_from_body,
    report_from_body,
    request_from_body,
)
from modelreg.promotion.domain import filters
from modelreg.promotion.domain.events import AccessDenied
from modelreg.promotion.domain.queries import (
    DeploymentRevision,
    HistoryEntry,
    deployment_revision,
    pointers_after,
)
from modelreg.promotion.domain.state import Aggregate, Pointers, Request
from modelreg.promotion.domain.values import (
    DEPLOYMENT_PREFIX,
    EvaluationFact,
    Policy,
    Report,
    VersionFacts,
    VersionStatus,
)


def _and(where: Node | None, schema: Schema, columns: Mapping[str, str], params: list[object]) -> str:
    """` AND (<the compiled filter>)`, its values appended to `params`; "" without a filter."""
    return f" AND ({compile_filter(where, schema, columns, params)})" if where is not None else ""


class PostgresPromotionReader:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._s = s = quote_schema(schema)
        self._load_sql = (
            f"SELECT h.revision AS head_revision, h.hash AS head_hash, p.*,"
            f" (SELECT array_agg(r.body ORDER BY r.name) FROM {s}.requests r"
            f"  WHERE r.model = wanted.stream AND r.state = 'PENDING') AS pending"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
            f" LEFT JOIN {s}.pointers p ON p.model = wanted.stream"
        )

    async def load(self, stream: str) -> Loaded[Aggregate]:
        # One statement, so the head, the pointers and the pending requests come
        # from one snapshot, in one round trip.
        row = await self._pool.fetchrow(self._load_sql, stream)
        assert row is not None
        return Loaded(aggregate_from_row(stream, row), head_of(row["head_revision"], row["head_hash"]))

    async def load_head(self, stream: str) -> Loaded[None]:
        head = await self._pool.fetchrow(
            f"SELECT revision, hash FROM {self._s}.stream_heads WHERE stream = $1", stream
        )
        return Loaded(None, head_of(head["revision"], head["hash"]) if head else EMPTY_HEAD)

    async def pointers(self, model: str) -> Pointers:
        row = await self._pool.fetchrow(f"SELECT * FROM {self._s}.pointers WHERE model = $1", model)
        return pointers_from_row(model, row)

    async def pointers_as_of(self, model: str, time: datetime) -> Pointers:
        rows = await self._pool.fetch(
            f"SELECT r.body FROM {self._s}.transitions t JOIN {self._s}.requests r ON r.name = t.request"
            " WHERE t.model = $1 AND t.apply_time <= $2 ORDER BY t.revision",
            model,
            time,
        )
        return pointers_after(model, [request_from_body(r["body"]) for r in rows])

    async def request(self, name: str) -> Request | None:
        body = await self._pool.fetchval(f"SELECT body FROM {self._s}.requests WHERE name = $1", name)
        return request_from_body(body) if body is not None else None

    async def request_by_event(self, event_id: str) -> Request | None:
        body = await self._pool.fetchval(
            f"SELECT body FROM {self._s}.requests WHERE created_event = $1::uuid", event_id
        )
        return request_from_body(body) if body is not None else None

    async def requests(
        self, model: str, state: str | None, after: Keyset | None, limit: int, where: Node | None = None
    ) -> list[tuple[int, Request]]:
        params: list[object] = [model, state, after[0] if after else None, limit]
        rows = await self._pool.fetch(
            f"SELECT created_revision, body FROM {self._s}.requests WHERE model = $1"
            " AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS NULL OR created_revision < $3)"
            f"{_and(where, filters.REQUESTS, filter_columns.REQUESTS, params)}"
            " ORDER BY created_revision DESC LIMIT $4",
            *params,
        )
        return [(r["created_revision"], request_from_body(r["body"])) for r in rows]

    async def history(
        self, model: str, pointer: str | None, after: Keyset | None, limit: int, where: Node | None = None
    ) -> list[tuple[int, HistoryEntry]]:
        params: list[object] = [model, pointer, after[0] if after else None, limit]
        rows = await self._pool.fetch(
            f"SELECT revision, entry FROM {self._s}.transitions WHERE model = $1"
            " AND ($2::text IS NULL OR $2 = ANY(targets)) AND ($3::bigint IS NULL OR revision < $3)"
            f"{_and(where, filters.HISTORY, filter_columns.HISTORY, params)} ORDER BY revision DESC LIMIT $4",
            *params,
        )
        return [(r["revision"], history_entry_from_body(r["entry"])) for r in rows]

    async def deployment_revision(
        self, model: str, environment: str, revision: int
    ) -> DeploymentRevision | None:
        target = DEPLOYMENT_PREFIX + environment
        rows = await self._pool.fetch(
            f"SELECT entry FROM {self._s}.transitions WHERE model = $1 AND $2 = ANY(targets)"
            " ORDER BY revision DESC",
            model,
            target,
        )
        for row in rows:
            found = deployment_revision(history_entry_from_body(row["entry"]), environment)
            if found is not None and found.deployment.revision == revision:
                return found
        return None

    async def reports(self, model: str) -> dict[str, Report]:
        rows = await self._pool.fetch(
            f"SELECT environment, report FROM {self._s}.deployment_reports WHERE model = $1", model
        )
        return {r["environment"]: report_from_body(r["report"]) for r in rows}

    async def policy(self, parent: str) -> Policy | None:
        body = await self._pool.fetchval(f"SELECT policy FROM {self._s}.policies WHERE parent = $1", parent)
        return policy_from_body(body) if body else None

    async def effective_policy(self, model: str) -> tuple[str, Policy | None]:
        """The model's own policy, else its namespace's; (parent, None) when neither is set."""
        namespace = "/".join(model.split("/")[:2])
        rows = {
            r["parent"]: r["policy"]
            for r in await self._pool.fetch(
                f"SELECT parent, policy FROM {self._s}.policies WHERE parent = ANY($1::text[])",
                [model, namespace],
            )
        }
        for parent in (model, namespace):
            if parent in rows:
                return parent, policy_from_body(rows[parent])
        return namespace, None

    async def denials(
        self, namespace: str, after: Keyset | None, limit: int, where: Node | None = None
    ) -> list[tuple[int, AccessDenied, datetime]]:
        params: list[object] = [namespace, after[0] if after else None, limit]
        rows = await self._pool.fetch(
            f"SELECT revision, principal, action, resource, reason, deny_time FROM {self._s}.access_denials"
            " WHERE namespace = $1 AND ($2::bigint IS NULL OR revision < $2)"
            f"{_and(where, filters.DENIALS, filter_columns.DENIALS, params)} ORDER BY revision DESC LIMIT $3",
            *params,
        )
        return [
            (
                r["revision"],
                AccessDenied(r["principal"], r["action"], r["resource"], r["reason"]),
                r["deny_time"],
            )
            for r in rows
        ]

    async def facts(self, model: str, versions: Sequence[int]) -> dict[int, VersionFacts]:
        rows = await self._pool.fetch(
            f"SELECT f.version, f.status, f.metrics, f.has_signature, (l.version IS NOT NULL) AS lineage"
            f" FROM {self._s}.version_facts f LEFT JOIN {self._s}.lineage_versions l"
            " ON l.model = f.model AND l.version = f.version"
            " WHERE f.model = $1 AND f.version = ANY($2::bigint[])",
            model,
            list(versions),
        )
        evaluations: dict[int, list[EvaluationFact]] = {}
        for e in await self._pool.fetch(
            "SELECT version, dataset_uri, dataset_digest, evaluate_time, metrics"
            f" FROM {self._s}.version_evaluations"
            " WHERE model = $1 AND version = ANY($2::bigint[])",
            model,
            list(versions),
        ):
            evaluations.setdefault(e["version"], []).append(
                EvaluationFact(
                    e["dataset_uri"], e["dataset_digest"], e["evaluate_time"], json.loads(e["metrics"])
                )
            )
        return {
            r["version"]: VersionFacts(
                r["version"],
                VersionStatus(r["status"]),
                json.loads(r["metrics"]),
                r["has_signature"],
                r["lineage"],
                tuple(evaluations.get(r["version"], ())),
            )
            for r in rows
        }

    async def checkpoints(self, topic: str) -> dict[int, int]:
        rows = await self._pool.fetch(
            f"SELECT partition, next_offset FROM {self._s}.checkpoints WHERE topic = $1", topic
        )
        return {r["partition"]: r["next_offset"] for r in rows}

    async def transitions_between(
        self, topic: str, parent: str, ranges: Mapping[int, tuple[int, int]]
    ) -> list[tuple[int, int, HistoryEntry]]:
        """Applied transitions at offsets [lo, hi) per partition, in log order per partition."""
        if not ranges:
            return []
        parts = sorted(ranges)
        rows = await self._pool.fetch(
            f'SELECT t.partition, t."offset", t.entry FROM {self._s}.transitions t'
            " JOIN unnest($2::int[], $3::bigint[], $4::bigint[]) AS r(p, lo, hi)"
            ' ON t.partition = r.p AND t."offset" >= r.lo AND t."offset" < r.hi'
            " WHERE t.topic = $1 AND ($5 = '' OR t.namespace = $5) AND ($6 = '' OR t.model = $6)"
            ' ORDER BY t.partition, t."offset"',
            topic,
            parts,
            [ranges[p][0] for p in parts],
            [ranges[p][1] for p in parts],
            parent.split("/")[1] if parent else "",
            parent if parent.count("/") == 3 else "",
        )
        return [(r["partition"], r["offset"], history_entry_from_body(r["entry"])) for r in rows]

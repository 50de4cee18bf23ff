"""Reads of the versioning read model and its reference caches: the VersionReader port."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg

from modelreg.commands.contracts import Loaded
from modelreg.eventlog import head_of
from modelreg.filtering import Node, compile_filter
from modelreg.paging import Keyset
from modelreg.projections.schema import quote_schema
from modelreg.versioning.adapters import filter_columns
from modelreg.versioning.adapters.schema import VERSION_COLUMNS, version_from_row
from modelreg.versioning.domain import filters
from modelreg.versioning.domain.state import ModelVersion, ModelVersions
from modelreg.versioning.domain.values import SemVer, Status, VersionSpec


class PostgresVersionReader:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._s = s = quote_schema(schema)
        # One statement, so the versions and the stream head come from one snapshot.
        self._load_sql = (
            f"SELECT h.revision AS head_revision, h.hash AS head_hash,"
            f" (SELECT coalesce(json_agg(row_to_json(v)), '[]'::json) FROM {s}.model_versions v"
            f"  WHERE v.model = wanted.stream) AS versions,"
            f" (SELECT p.keep_last_per_major FROM {s}.retention_policies p"
            f"  WHERE p.model = wanted.stream) AS keep"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
        )
        self._load_for_sql = (
            f"SELECT h.revision AS head_revision, h.hash AS head_hash,"
            f" (SELECT coalesce(json_agg(json_build_array(v.number, v.major, v.minor, v.pipeline, v.status)),"
            f"  '[]'::json) FROM {s}.model_versions v WHERE v.model = wanted.stream) AS summaries,"
            f" (SELECT coalesce(json_agg(row_to_json(f)), '[]'::json) FROM ("
            f"   SELECT * FROM {s}.model_versions WHERE model = wanted.stream AND number = $2"
            f"   UNION SELECT * FROM (SELECT DISTINCT ON (major) * FROM {s}.model_versions"
            f"    WHERE model = wanted.stream AND status <> 'deleted'"
            f"    ORDER BY major, minor DESC, pipeline DESC) AS newest) AS f) AS versions,"
            f" (SELECT p.keep_last_per_major FROM {s}.retention_policies p"
            f"  WHERE p.model = wanted.stream) AS keep"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
        )

    async def load_for(self, stream: str, number: int | None) -> Loaded[ModelVersions]:
        """What `decide` reads, without every version's spec: number, semver and status of
        each version; full rows only for version `number` (the one the command names) and
        the newest live version of each MAJOR line (a create's signature check). The cost
        of a command then no longer grows with the versions' size, only with their count."""
        row = await self._pool.fetchrow(self._load_for_sql, stream, number or 0)
        assert row is not None
        versions = {}
        epoch = datetime.fromtimestamp(0, UTC)
        for n, major, minor, pipeline, status in json.loads(row["summaries"]):
            versions[n] = ModelVersion(
                stream, n, SemVer(major, minor, pipeline), Status(status), VersionSpec(), epoch, epoch, "", ""
            )
        for item in json.loads(row["versions"]):
            v = version_from_row(item)
            versions[v.number] = v
        head = head_of(row["head_revision"], row["head_hash"])
        return Loaded(ModelVersions(stream, versions, row["keep"] or 0), head)

    async def load(self, stream: str) -> Loaded[ModelVersions]:
        row = await self._pool.fetchrow(self._load_sql, stream)
        assert row is not None
        versions = {}
        for item in json.loads(row["versions"]):
            v = version_from_row(item)
            versions[v.number] = v
        head = head_of(row["head_revision"], row["head_hash"])
        return Loaded(ModelVersions(stream, versions, row["keep"] or 0), head)

    async def version(
        self,
        model: str,
        *,
        number: int | None = None,
        revision: int | None = None,
        pointer: str | None = None,
    ) -> ModelVersion | None:
        """One version, by number, by the stream revision that created it, or by pointer."""
        if pointer is not None:
            # One statement, so the pointer and the row come from one snapshot.
            row = await self._pool.fetchrow(
                f"SELECT {VERSION_COLUMNS} FROM {self._s}.model_versions"
                f" WHERE model = $1 AND number = (SELECT version FROM {self._s}.version_pointers"
                "  WHERE model = $1 AND pointer = $2)",
                model,
                pointer,
            )
        elif number is not None:
            row = await self._pool.fetchrow(
                f"SELECT {VERSION_COLUMNS} FROM {self._s}.model_versions WHERE model = $1 AND number = $2",
                model,
                number,
            )
        else:
            row = await self._pool.fetchrow(
                f"SELECT {VERSION_COLUMNS} FROM {self._s}.model_versions"
                " WHERE model = $1 AND created_revision = $2",
                model,
                revision,
            )
        return version_from_row(row) if row else None

    async def model_state(self, model: str) -> str | None:
        return await self._pool.fetchval(f"SELECT state FROM {self._s}.catalog_models WHERE name = $1", model)

    async def pointers(self, model: str) -> dict[str, int]:
        rows = await self._pool.fetch(
            f"SELECT pointer, version FROM {self._s}.version_pointers WHERE model = $1", model
        )
        return {r["pointer"]: r["version"] for r in rows}

    async def referenced_blobs(self) -> set[str]:
        rows = await self._pool.fetch(
            f"SELECT DISTINCT f->>'sha256' AS sha256 FROM {self._s}.model_versions v,"
            " jsonb_array_elements(v.spec->'files') AS f WHERE v.status <> 'deleted'"
        )
        return {r["sha256"] for r in rows}

    async def list_versions(
        self,
        model: str,
        *,
        after: Keyset | None,
        limit: int,
        show_deleted: bool,
        where: Node | None = None,
    ) -> list[ModelVersion]:
        params: list[object] = [model, after[0] if after else 1 << 62, show_deleted, limit]
        condition = (
            f" AND ({compile_filter(where, filters.FILTER, filter_columns.FILTER, params)})"
            if where is not None
            else ""
        )
        rows = await self._pool.fetch(
            f"SELECT {VERSION_COLUMNS} FROM {self._s}.model_versions WHERE model = $1 AND number < $2"
            f" AND ($3 OR status <> 'deleted'){condition} ORDER BY number DESC LIMIT $4",
            *params,
        )
        return [version_from_row(r) for r in rows]

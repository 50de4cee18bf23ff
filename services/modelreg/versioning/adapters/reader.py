"""Reads of the versioning read model and its reference caches: the VersionReader port."""

from __future__ import annotations

import json
from datetime import datetime

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
from modelreg.versioning.domain.values import SemVer


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
        # Each branch is an index probe of at most one row: the cost of a command no longer
        # grows with how many versions the model has (issue 13).
        v = f"{s}.model_versions"
        self._load_for_sql = (
            f"SELECT h.revision AS head_revision, h.hash AS head_hash,"
            f" (SELECT coalesce(json_agg(row_to_json(f)), '[]'::json) FROM ("
            # the version the command names
            f"   (SELECT * FROM {v} WHERE model = $1 AND number = $2)"
            # the latest number, for the next one
            f"   UNION ALL (SELECT * FROM {v} WHERE model = $1 ORDER BY number DESC LIMIT 1)"
            # the greatest semver ever given, for a bump
            f"   UNION ALL (SELECT * FROM {v} WHERE model = $1"
            f"    ORDER BY major DESC, minor DESC, pipeline DESC LIMIT 1)"
            # an explicit semver: whether it is taken, and the greatest of its MAJOR line
            f"   UNION ALL (SELECT * FROM {v}"
            f"    WHERE model = $1 AND major = $3 AND minor = $4 AND pipeline = $5)"
            f"   UNION ALL (SELECT * FROM {v} WHERE model = $1 AND major = $3"
            f"    ORDER BY minor DESC, pipeline DESC LIMIT 1)"
            # the newest live version of the MAJOR line a create lands on (its signature check)
            f"   UNION ALL (SELECT * FROM {v} WHERE model = $1 AND status <> 'deleted' AND major = CASE"
            f"    WHEN $3 >= 0 THEN $3 ELSE (SELECT max(major) FROM {v} WHERE model = $1) END"
            f"    ORDER BY minor DESC, pipeline DESC LIMIT 1)"
            f" ) AS f) AS versions,"
            f" (SELECT p.keep_last_per_major FROM {s}.retention_policies p"
            f"  WHERE p.model = wanted.stream) AS keep"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
        )

    async def load_for(self, stream: str, part: int | SemVer | None) -> Loaded[ModelVersions]:
        """What `decide` reads, and no more: the version a command names (`part` is its number),
        or for a create (`part` is its explicit semver, or None for a bump) the latest number,
        the greatest semver, the explicit semver's twin and line, and the newest live version
        of the line the create lands on. A partial aggregate, so only decide may read it."""
        number = part if isinstance(part, int) else 0
        semver = part if isinstance(part, SemVer) else SemVer(-1, -1, -1)
        row = await self._pool.fetchrow(
            self._load_for_sql, stream, number, semver.major, semver.minor, semver.pipeline
        )
        assert row is not None
        versions = {}
        for item in json.loads(row["versions"]):
            version = version_from_row(item)
            versions[version.number] = version
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

    async def versions_as_of(self, model: str, time: datetime, number: int | None = None) -> ModelVersions:
        """The model's versions (or only version `number`) as they stood at `time`: of each one's
        current row and earlier states, the latest that began at or before it."""
        # The current row ends no state: it sorts after every history row of its version.
        rows = await self._pool.fetch(
            f"SELECT DISTINCT ON (number) {VERSION_COLUMNS} FROM ("
            f" SELECT {VERSION_COLUMNS}, {1 << 62}::bigint AS ended FROM {self._s}.model_versions"
            "  WHERE model = $1 AND ($2::bigint IS NULL OR number = $2) AND update_time <= $3"
            f" UNION ALL SELECT {VERSION_COLUMNS}, revision FROM {self._s}.model_version_history"
            "  WHERE model = $1 AND ($2::bigint IS NULL OR number = $2) AND update_time <= $3"
            " ) AS states ORDER BY number, ended DESC",
            model,
            number,
            time,
        )
        return ModelVersions(model, {r["number"]: version_from_row(r) for r in rows})

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

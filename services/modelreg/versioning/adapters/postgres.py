"""The versioning read model and its two reference caches, in PostgreSQL.

- model_versions / retention_policies: the fold of `modelreg.versioning.v1`,
  through the domain's own `evolve`, so a command and the read model share one
  definition of every state.
- catalog_models: which models exist, fed only by `modelreg.catalog.v1`.
- version_pointers: which version each stage or alias names, fed only by
  `modelreg.promotion.v1`.

The caches only validate commands. They fold other topics whose streams have
the same names as ours (the model), so each keeps its fold memory under its
own `stream_scope` in stream_heads and event_outcomes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from modelreg.commands.contracts import Loaded
from modelreg.errors import InvalidArgument
from modelreg.eventlog import head_of
from modelreg.eventmeta import EventMeta
from modelreg.filtering import Node, compile_filter
from modelreg.paging import Keyset
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.pointers import net_pointer_changes, write_pointer_changes
from modelreg.projections.schema import quote_schema
from modelreg.signatures import Signature, TensorSpec
from modelreg.versioning.adapters import codec
from modelreg.versioning.domain import query
from modelreg.versioning.domain.events import Event
from modelreg.versioning.domain.evolve import can_evolve, evolve
from modelreg.versioning.domain.state import ModelVersion, ModelVersions
from modelreg.versioning.domain.values import (
    ArtifactFile,
    CodeReference,
    Environment,
    SemVer,
    Status,
    VersionSpec,
)

log = structlog.get_logger(__name__)

COPY_THRESHOLD = 64
"""Changed versions in one batch from which COPY pays for its extra round trips."""

VERSION_COLUMNS = (
    "model, number, semver, major, minor, pipeline, status, spec, create_time, update_time,"
    " created_by, updated_by, state_reason, created_revision"
)


def spec_to_json(spec: VersionSpec) -> str:
    # Spelled out rather than dataclasses.asdict, whose deep copies were half of a replay's
    # time; the unit tests hold it equal to asdict (the stored JSON must not change).
    def tensors(items: tuple[TensorSpec, ...]) -> list[dict[str, Any]]:
        return [{"dtype": t.dtype, "name": t.name, "shape": list(t.shape)} for t in items]

    sig = spec.signature
    code, env = spec.code, spec.environment
    data = {
        "code": {"commit": code.commit, "dirty": code.dirty, "repo": code.repo},
        "description": spec.description,
        "environment": {
            "lock_digest": env.lock_digest,
            "packages": env.packages,
            "python_version": env.python_version,
        },
        "files": [
            {"media_type": f.media_type, "path": f.path, "sha256": f.sha256, "size": f.size}
            for f in spec.files
        ],
        "flavor": spec.flavor,
        "framework": spec.framework,
        "metrics": spec.metrics,
        "params": spec.params,
        "signature": None
        if sig is None
        else {"inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs)},
        "tags": spec.tags,
    }
    return _SPEC_JSON.encode(data)


# What json.dumps(data, sort_keys=True, separators=(",", ":")) builds on every call.
_SPEC_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def spec_from_json(raw: str | dict[str, Any]) -> VersionSpec:
    data = json.loads(raw) if isinstance(raw, str) else raw
    sig = data["signature"]

    def specs(items: list[dict[str, Any]]) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in items)

    return VersionSpec(
        description=data["description"],
        tags=data["tags"],
        metrics=data["metrics"],
        params=data["params"],
        code=CodeReference(**data["code"]),
        environment=Environment(**data["environment"]),
        framework=data["framework"],
        flavor=data["flavor"],
        signature=Signature(specs(sig["inputs"]), specs(sig["outputs"])) if sig is not None else None,
        files=tuple(ArtifactFile(**f) for f in data["files"]),
    )


def _timestamp(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


_FOLD_COLUMNS = ", ".join(
    "CASE WHEN t.number IS NULL THEN NULL ELSE v.spec END AS spec" if column == "spec" else f"v.{column}"
    for column in (c.strip() for c in VERSION_COLUMNS.split(","))
)


def version_from_row(row: Any) -> ModelVersion:
    return ModelVersion(
        model=row["model"],
        number=row["number"],
        semver=SemVer(row["major"], row["minor"], row["pipeline"]),
        status=Status(row["status"]),
        spec=spec_from_json(row["spec"]),
        create_time=_timestamp(row["create_time"]),
        update_time=_timestamp(row["update_time"]),
        created_by=row["created_by"],
        updated_by=row["updated_by"],
        state_reason=row["state_reason"],
        created_revision=row["created_revision"],
    )


class VersioningProjection:
    """Folds `modelreg.versioning.v1` into model_versions and retention_policies."""

    name = "versioning"
    read_model_tables = ("model_versions", "retention_policies")
    stream_scope = ""

    def ddl(self, schema: str) -> str:
        s = quote_schema(schema)
        return f"""
CREATE TABLE IF NOT EXISTS {s}.model_versions (
    model        text NOT NULL COLLATE "C",
    number       bigint NOT NULL,
    semver       text NOT NULL,
    major        int NOT NULL,
    minor        int NOT NULL,
    pipeline     int NOT NULL,
    status       text NOT NULL,
    spec         jsonb NOT NULL,
    create_time  timestamptz NOT NULL,
    update_time  timestamptz NOT NULL,
    created_by   text NOT NULL,
    updated_by   text NOT NULL,
    state_reason text NOT NULL,
    created_revision bigint NOT NULL,
    PRIMARY KEY (model, number),
    -- The fold already guarantees it; the constraint makes a bug loud.
    UNIQUE (model, major, minor, pipeline)
);
-- ListModelVersions' `tags.k = "v"` compiles to a containment test this index serves.
CREATE INDEX IF NOT EXISTS model_versions_tags ON {s}.model_versions
    USING gin ((spec->'tags') jsonb_path_ops);
CREATE TABLE IF NOT EXISTS {s}.retention_policies (
    model               text PRIMARY KEY COLLATE "C",
    keep_last_per_major int NOT NULL
);
"""

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        decoded = [(a, _decode(a)) for a in events]
        streams = list({a.envelope.stream for a, e in decoded if e is not None})
        if not streams:
            return
        states = {m: ModelVersions(m) for m in streams}
        # One read: full rows for the versions this batch names; of the others, can_evolve()
        # needs just number and semver (their spec is left out), and only changed
        # versions are written back. Retention policies are not read: the fold only
        # ever writes the one a RetentionSet carries.
        touched = {
            (a.envelope.stream, e.number) for a, e in decoded if e is not None and hasattr(e, "number")
        }
        stored: set[tuple[str, int]] = set()
        for row in await conn.fetch(
            f"SELECT {_FOLD_COLUMNS}, t.number IS NOT NULL AS touched FROM {s}.model_versions v"
            " LEFT JOIN unnest($2::text[], $3::bigint[]) AS t(model, number) USING (model, number)"
            " WHERE v.model = ANY($1::text[])",
            streams,
            [m for m, _ in touched],
            [n for _, n in touched],
        ):
            stored.add((row["model"], row["number"]))
            version = version_from_row(row) if row["touched"] else _summary(row)
            states[row["model"]].versions[row["number"]] = version
        changed: dict[tuple[str, int], ModelVersion] = {}
        policies: dict[str, int] = {}
        for accepted, event in decoded:
            if event is None:
                continue
            stream = accepted.envelope.stream
            if not can_evolve(states[stream], event):
                log.warning(
                    "versioning_event_skipped",
                    stream=stream,
                    offset=accepted.position.offset,
                )
                continue
            meta = EventMeta(
                stream, codec.occurred_at(accepted.envelope), accepted.envelope.actor, accepted.revision
            )
            state = states[stream] = evolve(states[stream], event, meta)
            number = getattr(event, "number", None)
            if number is None:
                policies[stream] = state.keep_last_per_major
            else:
                changed[(stream, number)] = state.versions[number]
        if changed:
            rows = [_version_row(v) for v in changed.values()]
            # COPY is fastest for the many new rows of a replay (DESIGN.md), but costs
            # three round trips; a live batch of a few events is one pipelined upsert.
            bulk = len(rows) >= COPY_THRESHOLD
            fresh = [r for r, key in zip(rows, changed, strict=True) if bulk and key not in stored]
            if fresh:
                await conn.copy_records_to_table(
                    "model_versions",
                    schema_name=schema,
                    columns=[c.strip() for c in VERSION_COLUMNS.split(",")],
                    records=fresh,
                )
            upserted = [r for r, key in zip(rows, changed, strict=True) if not bulk or key in stored]
            if upserted:
                await conn.executemany(
                    f"INSERT INTO {s}.model_versions ({VERSION_COLUMNS})"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14)"
                    " ON CONFLICT (model, number) DO UPDATE SET status = EXCLUDED.status,"
                    " spec = EXCLUDED.spec, update_time = EXCLUDED.update_time,"
                    " updated_by = EXCLUDED.updated_by, state_reason = EXCLUDED.state_reason",
                    upserted,
                )
        if policies:
            await conn.executemany(
                f"INSERT INTO {s}.retention_policies (model, keep_last_per_major) VALUES ($1, $2)"
                " ON CONFLICT (model) DO UPDATE SET keep_last_per_major = EXCLUDED.keep_last_per_major",
                list(policies.items()),
            )


def _version_row(v: ModelVersion) -> tuple[object, ...]:
    return (
        v.model,
        v.number,
        str(v.semver),
        v.semver.major,
        v.semver.minor,
        v.semver.pipeline,
        v.status.value,
        spec_to_json(v.spec),
        v.create_time,
        v.update_time,
        v.created_by,
        v.updated_by,
        v.state_reason,
        v.created_revision,
    )


def _summary(row: Any) -> ModelVersion:
    """A stand-in carrying only what can_evolve() reads (number and semver); never written back."""
    epoch = datetime.fromtimestamp(0, UTC)
    return ModelVersion(
        row["model"],
        row["number"],
        SemVer(row["major"], row["minor"], row["pipeline"]),
        Status.READY,
        VersionSpec(),
        epoch,
        epoch,
        "",
        "",
    )


def _decode(accepted: AcceptedEvent) -> Event | None:
    try:
        return codec.decode(accepted.envelope)
    except (InvalidArgument, ValueError) as error:
        # A record no version of this service could have written; skipping keeps the fold total.
        log.warning("versioning_event_undecodable", stream=accepted.envelope.stream, error=str(error))
        return None


class CatalogModelsCache:
    """Reference cache of `modelreg.catalog.v1`: which models exist, and whether archived.

    Decodes the catalog's payloads from modelreg.gen directly; the catalog
    service's code is never imported.
    """

    name = "versioning-catalog-cache"
    read_model_tables = ("catalog_models",)
    stream_scope = "catalog:"

    def ddl(self, schema: str) -> str:
        return f"""
CREATE TABLE IF NOT EXISTS {quote_schema(schema)}.catalog_models (
    name  text PRIMARY KEY COLLATE "C",
    state text NOT NULL
);
"""

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        states: dict[str, str] = {}
        for accepted in events:
            envelope = accepted.envelope
            match envelope.WhichOneof("payload"):
                case "registered_model_created":
                    states[envelope.registered_model_created.registered_model.name or envelope.stream] = (
                        "active"
                    )
                case "registered_model_archived":
                    states[envelope.stream] = "archived"
                case "registered_model_restored":
                    states[envelope.stream] = "active"
                case "registered_model_deleted":
                    states[envelope.stream] = "deleted"
        if states:
            await conn.executemany(
                f"INSERT INTO {quote_schema(schema)}.catalog_models (name, state) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state",
                list(states.items()),
            )


class PointersCache:
    """Reference cache of `modelreg.promotion.v1`: which versions stages, aliases and
    deployments name.

    Every version in a deployment's traffic split is in use too, so the splits are
    kept, as `deployment:{environment}#{version}` pointers (modelreg.projections.pointers).
    """

    name = "versioning-promotion-cache"
    read_model_tables = ("version_pointers",)
    stream_scope = "promotion:"

    def ddl(self, schema: str) -> str:
        return f"""
CREATE TABLE IF NOT EXISTS {quote_schema(schema)}.version_pointers (
    model   text NOT NULL COLLATE "C",
    pointer text NOT NULL COLLATE "C",
    version bigint NOT NULL,
    PRIMARY KEY (model, pointer)
);
"""

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        changes = net_pointer_changes((a.envelope for a in events), deployments=True)
        await write_pointer_changes(conn, f"{quote_schema(schema)}.version_pointers", changes)


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
        condition = f" AND ({compile_filter(where, query.FILTER, params)})" if where is not None else ""
        rows = await self._pool.fetch(
            f"SELECT {VERSION_COLUMNS} FROM {self._s}.model_versions WHERE model = $1 AND number < $2"
            f" AND ($3 OR status <> 'deleted'){condition} ORDER BY number DESC LIMIT $4",
            *params,
        )
        return [version_from_row(r) for r in rows]


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)

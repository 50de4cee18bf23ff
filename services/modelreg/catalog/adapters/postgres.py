"""The catalog's read model in PostgreSQL: the projection that writes it and the reader."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC

import asyncpg

from modelreg.catalog.adapters import codec
from modelreg.catalog.domain.model import EventMeta, ModelState, RegisteredModel, evolve
from modelreg.catalog.domain.names import ModelName, parse_model_name
from modelreg.eventlog import EMPTY_HEAD, StreamHead
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.contracts import Loaded
from modelreg.projections.schema import quote_schema

COLUMN_LIST = [
    "name",
    "namespace",
    "model",
    "description",
    "tags",
    "state",
    "create_time",
    "update_time",
    "created_by",
    "updated_by",
    "revision",
]
COLUMNS = (
    "name, namespace, model, description, tags, state, create_time, update_time,"
    " created_by, updated_by, revision"
)


class CatalogProjection:
    """Folds `modelreg.catalog.v1` into catalog.registered_models."""

    name = "catalog"
    read_model_tables = ("registered_models",)

    def ddl(self, schema: str) -> str:
        s = quote_schema(schema)
        return f"""
CREATE TABLE IF NOT EXISTS {s}.registered_models (
    name        text PRIMARY KEY,
    namespace   text NOT NULL,
    model       text NOT NULL,
    description text NOT NULL,
    tags        jsonb NOT NULL,
    state       text NOT NULL,
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL,
    created_by  text NOT NULL,
    updated_by  text NOT NULL,
    revision    bigint NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS registered_models_by_namespace
    ON {s}.registered_models (namespace, model);
"""

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        streams = list({e.envelope.stream for e in events})
        rows = await conn.fetch(
            f"SELECT {COLUMNS} FROM {s}.registered_models WHERE name = ANY($1::text[])", streams
        )
        models: dict[str, RegisteredModel | None] = {r["name"]: _model(r) for r in rows}
        for accepted in events:
            event = codec.decode(accepted.envelope)
            if event is None:
                continue
            meta = EventMeta(
                accepted.envelope.occurred_at.ToDatetime(tzinfo=UTC),
                accepted.envelope.actor,
                accepted.revision,
            )
            stream = accepted.envelope.stream
            models[stream] = evolve(models.get(stream), event, meta)
        existing = {r["name"] for r in rows}
        changed = [m for m in models.values() if m is not None]
        # New rows go in with COPY (replays are almost all inserts); changed rows are upserted.
        fresh = [_row(m) for m in changed if str(m.name) not in existing]
        updated = [_row(m) for m in changed if str(m.name) in existing]
        if fresh:
            await conn.copy_records_to_table(
                "registered_models", schema_name=schema, columns=COLUMN_LIST, records=fresh
            )
        if updated:
            await conn.executemany(
                f"UPDATE {s}.registered_models SET description = $4, tags = $5::jsonb, state = $6,"
                " update_time = $8, updated_by = $10, revision = $11"
                " WHERE name = $1 AND namespace = $2 AND model = $3"
                " AND create_time = $7 AND created_by = $9",
                updated,
            )


class PostgresCatalogReader:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        s = quote_schema(schema)
        self._load_sql = (
            f"SELECT h.revision AS head_revision, h.hash AS head_hash, m.*"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
            f" LEFT JOIN {s}.registered_models m ON m.name = wanted.stream"
        )
        self._get_sql = f"SELECT {COLUMNS} FROM {s}.registered_models WHERE name = $1"
        self._list_sql = (
            f"SELECT {COLUMNS} FROM {s}.registered_models"
            " WHERE namespace = $1 AND model > $2 ORDER BY model LIMIT $3"
        )

    async def load(self, stream: str) -> Loaded[RegisteredModel | None]:
        # One statement, so the model and its stream head come from one snapshot.
        row = await self._pool.fetchrow(self._load_sql, stream)
        assert row is not None
        head = (
            StreamHead(row["head_revision"], bytes(row["head_hash"]))
            if row["head_revision"] is not None
            else EMPTY_HEAD
        )
        return Loaded(_model(row) if row["name"] is not None else None, head)

    async def get(self, name: ModelName) -> RegisteredModel | None:
        row = await self._pool.fetchrow(self._get_sql, str(name))
        return _model(row) if row else None

    async def list(self, namespace: str, *, after: str | None, limit: int) -> Sequence[RegisteredModel]:
        rows = await self._pool.fetch(self._list_sql, namespace, after or "", limit)
        return [_model(r) for r in rows]


def _model(row: asyncpg.Record) -> RegisteredModel:
    return RegisteredModel(
        name=parse_model_name(row["name"]),
        description=row["description"],
        tags=json.loads(row["tags"]),
        state=ModelState(row["state"]),
        create_time=row["create_time"],
        update_time=row["update_time"],
        created_by=row["created_by"],
        updated_by=row["updated_by"],
        revision=row["revision"],
    )


def _row(m: RegisteredModel) -> tuple[object, ...]:
    return (
        str(m.name),
        m.name.namespace,
        m.name.model,
        m.description,
        json.dumps(m.tags, sort_keys=True),
        m.state.value,
        m.create_time,
        m.update_time,
        m.created_by,
        m.updated_by,
        m.revision,
    )

"""The catalog's read model in PostgreSQL: the projection that writes it and the reader
(whose search compiles the filter through modelreg.filtering and the catalog's schema).

Layout: one row per model (maps and the signature as jsonb) and one per
namespace. Properties are stored as `{"key": {"type": ..., "s"|"n"|"b"|"t": value}}`
so that a filter compares a literal only with properties of a matching type:
`n` holds ints and doubles alike (compared as numeric), `t` an RFC 3339 string.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from modelreg.catalog.adapters import codec
from modelreg.catalog.application.ports import SearchQuery
from modelreg.catalog.domain.events import NamespaceCreated, RegisteredModelCreated
from modelreg.catalog.domain.evolve import evolve_model, evolve_namespace
from modelreg.catalog.domain.query import FILTER, SortKey
from modelreg.catalog.domain.state import Namespace, RegisteredModel
from modelreg.catalog.domain.values import ModelFields, ModelState, Property, PropertyKind
from modelreg.commands.contracts import Loaded
from modelreg.eventlog import StreamHead, head_of
from modelreg.eventmeta import EventMeta
from modelreg.filtering import Compiler
from modelreg.names import ModelName, parse_model_name
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import quote_schema
from modelreg.signatures import Signature, TensorSpec

COLUMNS = (
    "name, namespace, model, description, annotations, tags, properties, signature, owners, state,"
    " create_time, update_time, created_by, updated_by, revision"
)
NAMESPACE_COLUMNS = "name, description, implicit, create_time, created_by, revision"

log = structlog.get_logger(__name__)


class CatalogProjection:
    """Folds `modelreg.catalog.v1` into catalog.registered_models and catalog.namespaces."""

    name = "catalog"
    read_model_tables = ("registered_models", "namespaces")
    stream_scope = ""

    def ddl(self, schema: str) -> str:
        s = quote_schema(schema)
        # COLLATE "C": names and string comparisons order by code point, the same
        # in every database and in the page tokens. Indexes: keyset pagination per
        # order_by (btree), jsonb containment/key tests for tags, properties and
        # owners (GIN), and full text over description and annotations (GIN).
        return f"""
CREATE TABLE IF NOT EXISTS {s}.registered_models (
    name        text PRIMARY KEY,
    namespace   text NOT NULL COLLATE "C",
    model       text NOT NULL COLLATE "C",
    description text NOT NULL,
    annotations text NOT NULL,
    tags        jsonb NOT NULL,
    properties  jsonb NOT NULL,
    signature   jsonb,
    owners      jsonb NOT NULL,
    state       text NOT NULL,
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL,
    created_by  text NOT NULL,
    updated_by  text NOT NULL,
    revision    bigint NOT NULL,
    search      tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, description), 'A')
        || setweight(to_tsvector('english'::regconfig, annotations), 'B')
    ) STORED
);
CREATE UNIQUE INDEX IF NOT EXISTS registered_models_by_namespace
    ON {s}.registered_models (namespace, model);
CREATE INDEX IF NOT EXISTS registered_models_by_create_time
    ON {s}.registered_models (namespace, create_time, model);
CREATE INDEX IF NOT EXISTS registered_models_by_update_time
    ON {s}.registered_models (namespace, update_time, model);
CREATE INDEX IF NOT EXISTS registered_models_tags ON {s}.registered_models USING gin (tags);
CREATE INDEX IF NOT EXISTS registered_models_properties ON {s}.registered_models USING gin (properties);
CREATE INDEX IF NOT EXISTS registered_models_owners
    ON {s}.registered_models USING gin (owners jsonb_path_ops);
CREATE INDEX IF NOT EXISTS registered_models_search ON {s}.registered_models USING gin (search);
CREATE TABLE IF NOT EXISTS {s}.namespaces (
    name        text PRIMARY KEY COLLATE "C",
    description text NOT NULL,
    implicit    boolean NOT NULL,
    create_time timestamptz NOT NULL,
    created_by  text NOT NULL,
    revision    bigint NOT NULL
);
"""

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        decoded = [(accepted, codec.decode(accepted.envelope)) for accepted in events]
        model_streams = list(
            {a.envelope.stream for a, e in decoded if e and not isinstance(e, NamespaceCreated)}
        )
        models: dict[str, RegisteredModel | None] = {}
        rows: list[asyncpg.Record] = []
        if model_streams:
            rows = await conn.fetch(
                f"SELECT {COLUMNS} FROM {s}.registered_models WHERE name = ANY($1::text[])", model_streams
            )
            models = {r["name"]: _model(r) for r in rows}
        changed: dict[str, RegisteredModel] = {}
        namespaces: list[Namespace] = []
        for accepted, event in decoded:
            if event is None:
                continue
            meta = EventMeta(
                accepted.envelope.stream,
                accepted.envelope.occurred_at.ToDatetime(tzinfo=UTC),
                accepted.envelope.actor,
                accepted.revision,
            )
            if isinstance(event, NamespaceCreated):
                namespaces.append(evolve_namespace(None, event, meta))
                continue
            stream = accepted.envelope.stream
            current = models.get(stream)
            if (current is None) != isinstance(event, RegisteredModelCreated) or str(event.name) != stream:
                # Commands never produce this; a hand-made record could. Skipping it (the
                # same way in every replay) keeps the fold total instead of wedging the projector.
                log.warning("catalog_event_does_not_fit", stream=stream, event_id=accepted.envelope.event_id)
                continue
            models[stream] = changed[stream] = evolve_model(current, event, meta)
        if changed:
            await _write_models(conn, schema, list(changed.values()), existing={r["name"] for r in rows})
        if namespaces:
            await conn.executemany(
                f"INSERT INTO {s}.namespaces ({NAMESPACE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (n.name, n.description, n.implicit, n.create_time, n.created_by, n.revision)
                    for n in namespaces
                ],
            )


async def _write_models(
    conn: asyncpg.Connection, schema: str, models: list[RegisteredModel], existing: set[str]
) -> None:
    # New rows go in with COPY (a replay is almost all inserts: DESIGN.md measured COPY
    # fastest); changed rows are upserted in one statement per batch.
    fresh = [_row(m) for m in models if str(m.name) not in existing]
    if fresh:
        await conn.copy_records_to_table(
            "registered_models",
            schema_name=schema,
            columns=[c.strip() for c in COLUMNS.split(",")],
            records=fresh,
        )
    changed = [_row(m) for m in models if str(m.name) in existing]
    if changed:
        await _upsert_models(conn, quote_schema(schema), changed)


async def _upsert_models(conn: asyncpg.Connection, s: str, rows: list[tuple[object, ...]]) -> None:
    # Arrays in, unnest, upsert: one round trip. jsonb travels as text.
    columns = list(zip(*rows, strict=True))
    await conn.execute(
        f"INSERT INTO {s}.registered_models ({COLUMNS})"
        " SELECT n, ns, mo, d, a, t::jsonb, p::jsonb, sg::jsonb, o::jsonb, st, ct, ut, cb, ub, r"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
        " $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::text[],"
        " $14::text[], $15::bigint[]) AS u(n, ns, mo, d, a, t, p, sg, o, st, ct, ut, cb, ub, r)"
        " ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description,"
        " annotations = EXCLUDED.annotations, tags = EXCLUDED.tags, properties = EXCLUDED.properties,"
        " signature = EXCLUDED.signature, owners = EXCLUDED.owners, state = EXCLUDED.state,"
        " update_time = EXCLUDED.update_time, updated_by = EXCLUDED.updated_by, revision = EXCLUDED.revision",
        *[list(c) for c in columns],
    )


class PostgresCatalogReader:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._s = s = quote_schema(schema)
        self._load_sql = (
            f"SELECT h.revision AS head_revision, h.hash AS head_hash, m.*"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
            f" LEFT JOIN {s}.registered_models m ON m.name = wanted.stream"
        )
        self._load_namespace_sql = (
            f"SELECT h.revision AS head_revision, h.hash AS head_hash, n.*"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
            f" LEFT JOIN {s}.namespaces n ON 'namespaces/' || n.name = wanted.stream"
        )
        self._get_sql = f"SELECT {COLUMNS} FROM {s}.registered_models WHERE name = $1"
        self._get_namespace_sql = f"SELECT {NAMESPACE_COLUMNS} FROM {s}.namespaces WHERE name = $1"
        self._list_namespaces_sql = (
            f"SELECT {NAMESPACE_COLUMNS} FROM {s}.namespaces WHERE name > $1 ORDER BY name LIMIT $2"
        )

    async def load(self, stream: str) -> Loaded[RegisteredModel | None]:
        # One statement, so the model and its stream head come from one snapshot.
        row = await self._pool.fetchrow(self._load_sql, stream)
        assert row is not None
        return Loaded(_model(row) if row["name"] is not None else None, _head(row))

    async def load_namespace(self, stream: str) -> Loaded[Namespace | None]:
        row = await self._pool.fetchrow(self._load_namespace_sql, stream)
        assert row is not None
        return Loaded(_namespace(row) if row["name"] is not None else None, _head(row))

    async def get(self, name: ModelName) -> RegisteredModel | None:
        row = await self._pool.fetchrow(self._get_sql, str(name))
        return _model(row) if row else None

    async def get_namespace(self, namespace: str) -> Namespace | None:
        row = await self._pool.fetchrow(self._get_namespace_sql, namespace)
        return _namespace(row) if row else None

    async def list_namespaces(self, *, after: str | None, limit: int) -> Sequence[Namespace]:
        rows = await self._pool.fetch(self._list_namespaces_sql, after or "", limit)
        return [_namespace(r) for r in rows]

    async def search(self, query: SearchQuery) -> Sequence[RegisteredModel]:
        sql, params = compile_search(self._s, query)
        rows = await self._pool.fetch(sql, *params)
        return [_model(r) for r in rows]


# Search ---------------------------------------------------------------------

_SORT_COLUMN = {
    SortKey.NAME: "m.model",
    SortKey.CREATE_TIME: "m.create_time",
    SortKey.UPDATE_TIME: "m.update_time",
}


def compile_search(s: str, query: SearchQuery) -> tuple[str, list[object]]:
    """The SELECT for a search; every value travels as a bind parameter."""
    compiler = Compiler(FILTER)
    where = [f"m.namespace = {compiler.param(query.namespace, 'text')}"]
    if not query.show_deleted:
        where.append("m.state <> 'deleted'")
    if query.filter is not None:
        where.append(f"({compiler.node(query.filter)})")
    keys = query.ordering.keys
    if query.after is not None:
        columns = [_SORT_COLUMN[k] for k, _ in keys]
        values = [
            compiler.param(v, "text" if k is SortKey.NAME else "timestamptz")
            for (k, _), v in zip(keys, query.after, strict=True)
        ]
        directions = {d for _, d in keys}
        if len(directions) == 1:
            # A row comparison, which the (namespace, key, model) btree serves directly.
            op = "<" if directions.pop() else ">"
            where.append(f"({', '.join(columns)}) {op} ({', '.join(values)})")
        else:
            alternatives = []
            for i, (_, desc) in enumerate(keys):
                equal = [f"{columns[j]} = {values[j]}" for j in range(i)]
                alternatives.append(
                    " AND ".join([*equal, f"{columns[i]} {'<' if desc else '>'} {values[i]}"])
                )
            where.append("(" + " OR ".join(f"({a})" for a in alternatives) + ")")
    order = ", ".join(f"{_SORT_COLUMN[k]} {'DESC' if d else 'ASC'}" for k, d in keys)
    limit = compiler.param(query.limit, "int")
    sql = (
        f"SELECT {COLUMNS} FROM {s}.registered_models m"
        f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {limit}"
    )
    return sql, compiler.params


# Rows <-> domain ------------------------------------------------------------


def _head(row: asyncpg.Record) -> StreamHead:
    return head_of(row["head_revision"], row["head_hash"])


def _namespace(row: asyncpg.Record) -> Namespace:
    return Namespace(
        row["name"],
        row["description"],
        row["implicit"],
        row["create_time"],
        row["created_by"],
        row["revision"],
    )


def properties_to_json(properties: dict[str, Property]) -> str:
    out: dict[str, dict[str, object]] = {}
    for key, prop in properties.items():
        match prop.kind:
            case PropertyKind.STRING:
                out[key] = {"type": "string", "s": prop.value}
            case PropertyKind.INT | PropertyKind.DOUBLE:
                out[key] = {"type": prop.kind.value, "n": prop.value}
            case PropertyKind.BOOL:
                out[key] = {"type": "bool", "b": prop.value}
            case PropertyKind.TIMESTAMP:
                assert isinstance(prop.value, datetime)
                out[key] = {
                    "type": "timestamp",
                    "t": prop.value.astimezone(UTC).isoformat(timespec="microseconds"),
                }
    return json.dumps(out, sort_keys=True)


def _properties(raw: str) -> dict[str, Property]:
    out: dict[str, Property] = {}
    for key, value in json.loads(raw).items():
        kind = PropertyKind(value["type"])
        match kind:
            case PropertyKind.STRING:
                out[key] = Property(kind, value["s"])
            case PropertyKind.INT:
                out[key] = Property(kind, int(value["n"]))
            case PropertyKind.DOUBLE:
                out[key] = Property(kind, float(value["n"]))
            case PropertyKind.BOOL:
                out[key] = Property(kind, bool(value["b"]))
            case PropertyKind.TIMESTAMP:
                out[key] = Property(kind, datetime.fromisoformat(value["t"]))
    return out


def signature_to_json(signature: Signature | None) -> str | None:
    if signature is None:
        return None

    def spec(s: TensorSpec) -> dict[str, object]:
        return {"name": s.name, "dtype": s.dtype, "shape": list(s.shape)}

    return json.dumps(
        {"inputs": [spec(s) for s in signature.inputs], "outputs": [spec(s) for s in signature.outputs]}
    )


def _signature(raw: str | None) -> Signature | None:
    if raw is None:
        return None
    data = json.loads(raw)

    def spec(s: dict[str, Any]) -> TensorSpec:
        return TensorSpec(str(s["name"]), str(s["dtype"]), tuple(s["shape"]))

    return Signature(tuple(spec(s) for s in data["inputs"]), tuple(spec(s) for s in data["outputs"]))


def _model(row: asyncpg.Record) -> RegisteredModel:
    return RegisteredModel(
        name=parse_model_name(row["name"]),
        fields=ModelFields(
            description=row["description"],
            annotations=row["annotations"],
            tags=json.loads(row["tags"]),
            properties=_properties(row["properties"]),
            signature=_signature(row["signature"]),
            owners=tuple(json.loads(row["owners"])),
        ),
        state=ModelState(row["state"]),
        create_time=row["create_time"],
        update_time=row["update_time"],
        created_by=row["created_by"],
        updated_by=row["updated_by"],
        revision=row["revision"],
    )


def _row(m: RegisteredModel) -> tuple[object, ...]:
    f = m.fields
    return (
        str(m.name),
        m.name.namespace,
        m.name.model,
        f.description,
        f.annotations,
        json.dumps(f.tags, sort_keys=True),
        properties_to_json(f.properties),
        signature_to_json(f.signature),
        json.dumps(list(f.owners)),
        m.state.value,
        m.create_time,
        m.update_time,
        m.created_by,
        m.updated_by,
        m.revision,
    )

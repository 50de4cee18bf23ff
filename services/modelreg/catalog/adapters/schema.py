"""The catalog's read model in PostgreSQL: its tables, and how a row maps to the domain.

Layout: one row per model (maps and the signature as jsonb) and one per
namespace. Properties are stored as `{"key": {"type": ..., "s"|"n"|"b"|"t": value}}`
so that a filter compares a literal only with properties of a matching type:
`n` holds ints and doubles alike (compared as numeric), `t` an RFC 3339 string.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg

from modelreg.catalog.domain.state import Namespace, RegisteredModel
from modelreg.catalog.domain.values import ModelFields, ModelState, Property, PropertyKind
from modelreg.names import parse_model_name
from modelreg.projections.schema import quote_schema
from modelreg.signatures import Signature, TensorSpec

COLUMNS = (
    "name, namespace, model, description, annotations, tags, properties, signature, owners, state,"
    " create_time, update_time, created_by, updated_by, revision, display_name"
)
NAMESPACE_COLUMNS = "name, description, implicit, create_time, created_by, revision"


def catalog_tables(schema: str) -> str:
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
    display_name text NOT NULL DEFAULT '' COLLATE "C",
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
-- Added with display names: a read model made before them gains the column (then folds on).
ALTER TABLE {s}.registered_models ADD COLUMN IF NOT EXISTS display_name text NOT NULL DEFAULT '' COLLATE "C";
CREATE INDEX IF NOT EXISTS registered_models_by_display_name
    ON {s}.registered_models (namespace, display_name, model);
CREATE TABLE IF NOT EXISTS {s}.namespaces (
    name        text PRIMARY KEY COLLATE "C",
    description text NOT NULL,
    implicit    boolean NOT NULL,
    create_time timestamptz NOT NULL,
    created_by  text NOT NULL,
    revision    bigint NOT NULL
);
"""


def namespace_from_row(row: asyncpg.Record) -> Namespace:
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


def properties_from_json(raw: str) -> dict[str, Property]:
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


def signature_from_json(raw: str | None) -> Signature | None:
    if raw is None:
        return None
    data = json.loads(raw)

    def spec(s: dict[str, Any]) -> TensorSpec:
        return TensorSpec(str(s["name"]), str(s["dtype"]), tuple(s["shape"]))

    return Signature(tuple(spec(s) for s in data["inputs"]), tuple(spec(s) for s in data["outputs"]))


def model_from_row(row: asyncpg.Record) -> RegisteredModel:
    return RegisteredModel(
        name=parse_model_name(row["name"]),
        fields=ModelFields(
            description=row["description"],
            annotations=row["annotations"],
            tags=json.loads(row["tags"]),
            properties=properties_from_json(row["properties"]),
            signature=signature_from_json(row["signature"]),
            owners=tuple(json.loads(row["owners"])),
            display_name=row["display_name"],
        ),
        state=ModelState(row["state"]),
        create_time=row["create_time"],
        update_time=row["update_time"],
        created_by=row["created_by"],
        updated_by=row["updated_by"],
        revision=row["revision"],
    )


def model_to_row(m: RegisteredModel) -> tuple[object, ...]:
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
        f.display_name,
    )

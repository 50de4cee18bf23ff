"""Reference caches fed by other services' topics, used only to validate commands.

They fold other topics whose streams have the same names as ours (the model),
so each keeps its fold memory under its own `stream_scope` in stream_heads and
event_outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.pointers import net_pointer_changes, write_pointer_changes
from modelreg.projections.schema import quote_schema
from modelreg.versioning.adapters.schema import catalog_models_table, version_pointers_table


class CatalogModelsCache:
    """Reference cache of `modelreg.catalog.v1`: which models exist, and whether archived.

    Decodes the catalog's payloads from modelreg.gen directly; the catalog
    service's code is never imported.
    """

    name = "versioning-catalog-cache"
    read_model_tables = ("catalog_models",)
    stream_scope = "catalog:"

    def ddl(self, schema: str) -> str:
        return catalog_models_table(schema)

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
        return version_pointers_table(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        changes = net_pointer_changes((a.envelope for a in events), deployments=True)
        await write_pointer_changes(conn, f"{quote_schema(schema)}.version_pointers", changes)

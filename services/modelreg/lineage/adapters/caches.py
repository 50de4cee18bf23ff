"""Reference caches fed by other services' topics, used only to validate and filter lineage requests."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from modelreg.lineage.adapters.schema import known_versions_table, stage_pointers_table
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.pointers import net_pointer_changes, write_pointer_changes
from modelreg.projections.schema import quote_schema


class VersionCache:
    """A reference cache of `modelreg.versioning.v1`: which versions exist, used only to
    validate commands. It decodes the versioning payloads from the generated protos and
    imports nothing of the versioning service."""

    name = "versioning-cache"
    read_model_tables = ("known_versions",)
    # The versioning topic keys its streams by model name, as the lineage topic does:
    # scoped, so the two folds keep separate stream heads in this schema.
    stream_scope = "modelreg.versioning.v1|"

    def ddl(self, schema: str) -> str:
        return known_versions_table(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        changes: dict[str, bool] = {}
        for accepted in events:
            envelope = accepted.envelope
            field = envelope.WhichOneof("payload")
            if field == "model_version_created":
                version = envelope.model_version_created.model_version
                name = version.name or f"{envelope.stream}/versions/{version.version}"
                changes[name] = False
            elif field == "model_version_deleted":
                changes[envelope.model_version_deleted.name] = True
        if changes:
            await conn.execute(
                f"INSERT INTO {s}.known_versions (name, deleted)"
                " SELECT * FROM unnest($1::text[], $2::boolean[])"
                " ON CONFLICT (name) DO UPDATE SET deleted = EXCLUDED.deleted",
                list(changes),
                list(changes.values()),
            )


class PointerCache:
    """A reference cache of `modelreg.promotion.v1`: which version each stage or alias
    names, used only to filter FindDownstream by stage."""

    name = "promotion-cache"
    read_model_tables = ("stage_pointers",)
    stream_scope = "modelreg.promotion.v1|"

    def ddl(self, schema: str) -> str:
        return stage_pointers_table(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        # Deployments' traffic splits name versions too, but no stage: not kept here.
        changes = net_pointer_changes((a.envelope for a in events), deployments=False)
        await write_pointer_changes(conn, f"{quote_schema(schema)}.stage_pointers", changes)

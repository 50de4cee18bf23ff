"""The reference caches, used only to validate commands: version_facts folded from `modelreg.versioning.v1`,
lineage_versions from `modelreg.lineage.v1`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC

import asyncpg

from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import quote_schema
from modelreg.promotion.adapters.schema import lineage_versions_table, version_facts_table
from modelreg.promotion.domain.values import VersionStatus


def _version_name(name: str) -> tuple[str, int] | None:
    """`namespaces/{ns}/models/{m}/versions/{n}` -> (model, n)."""
    parts = name.split("/")
    if len(parts) != 6 or parts[4] != "versions" or not parts[5].isdigit():
        return None
    return "/".join(parts[:4]), int(parts[5])


class VersionFactsCache:
    """Folds `modelreg.versioning.v1` into version_facts: status, metrics, signature presence."""

    name = "promotion-versions"
    read_model_tables = ("version_facts",)
    # Versioning keys its streams by model too: keep its fold bookkeeping apart from ours.
    stream_scope = "versioning:"

    def ddl(self, schema: str) -> str:
        return version_facts_table(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        created: list[tuple[object, ...]] = []
        status: list[tuple[str, int, str]] = []
        for accepted in events:
            envelope: Envelope = accepted.envelope
            match envelope.WhichOneof("payload"):
                case "model_version_created":
                    v = envelope.model_version_created.model_version
                    key = _version_name(v.name)
                    if key is None:
                        continue
                    signature = v.HasField("signature") and bool(v.signature.inputs or v.signature.outputs)
                    created.append(
                        (
                            key[0],
                            key[1],
                            VersionStatus.PENDING_UPLOAD.value,
                            json.dumps(dict(sorted(v.metrics.items()))),
                            signature,
                        )
                    )
                case "model_version_finalized":
                    key = _version_name(envelope.model_version_finalized.name)
                    if key:
                        status.append((*key, VersionStatus.READY.value))
                case "model_version_deprecated":
                    key = _version_name(envelope.model_version_deprecated.name)
                    if key:
                        status.append((*key, VersionStatus.DEPRECATED.value))
                case "model_version_deleted":
                    key = _version_name(envelope.model_version_deleted.name)
                    if key:
                        status.append((*key, VersionStatus.DELETED.value))
        # Order matters within a batch: creations first, then status changes in log order.
        if created:
            await conn.executemany(
                f"INSERT INTO {s}.version_facts (model, version, status, metrics, has_signature)"
                " VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (model, version) DO NOTHING",
                created,
            )
        if status:
            await conn.executemany(
                f"UPDATE {s}.version_facts SET status = $3 WHERE model = $1 AND version = $2", status
            )


class LineageCache:
    """Folds `modelreg.lineage.v1` into lineage_versions (which versions have lineage recorded) and
    version_evaluations (each version's newest evaluation per dataset, what RECENT_EVALUATION reads)."""

    name = "promotion-lineage"
    read_model_tables = ("lineage_versions", "version_evaluations")
    stream_scope = "lineage:"

    def ddl(self, schema: str) -> str:
        return lineage_versions_table(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        rows: set[tuple[str, int]] = set()
        evaluations: dict[tuple[str, int, str, str], tuple[object, ...]] = {}
        for accepted in events:
            envelope = accepted.envelope
            if envelope.WhichOneof("payload") == "evaluation_recorded":
                e = envelope.evaluation_recorded.evaluation
                key = _version_name(e.model_version)
                if key is None or not e.dataset.uri:
                    continue
                at = e.evaluate_time.ToDatetime(tzinfo=UTC)
                slot = (key[0], key[1], e.dataset.uri, e.dataset.digest)
                row = (*slot, at, envelope.event_id, json.dumps(dict(sorted(e.metrics.items()))))
                # The newest by evaluation time (then event id) wins, whatever order they were recorded in.
                if slot not in evaluations or (at, envelope.event_id) > evaluations[slot][4:6]:
                    evaluations[slot] = row
                continue
            match envelope.WhichOneof("payload"):
                case "lineage_recorded":
                    key = _version_name(envelope.lineage_recorded.record.model_version)
                case "lineage_record_superseded":
                    key = _version_name(envelope.lineage_record_superseded.record.model_version)
                case _:
                    key = None
            if key:
                rows.add(key)
        if rows:
            await conn.executemany(
                f"INSERT INTO {s}.lineage_versions (model, version) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                sorted(rows),
            )
        if evaluations:
            await conn.executemany(
                f"INSERT INTO {s}.version_evaluations (model, version, dataset_uri, dataset_digest,"
                " evaluate_time, event_id, metrics) VALUES ($1, $2, $3, $4, $5, $6::uuid, $7::jsonb)"
                " ON CONFLICT (model, version, dataset_uri, dataset_digest) DO UPDATE SET"
                " evaluate_time = EXCLUDED.evaluate_time, event_id = EXCLUDED.event_id,"
                " metrics = EXCLUDED.metrics"
                f" WHERE ({s}.version_evaluations.evaluate_time, {s}.version_evaluations.event_id)"
                " < (EXCLUDED.evaluate_time, EXCLUDED.event_id)",
                [evaluations[k] for k in sorted(evaluations)],
            )

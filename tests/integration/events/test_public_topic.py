"""The public topic against the whole registry: a workload through the SDK publishes one
CloudEvent per accepted change a CD system cares about (and one per stage, alias and
traffic split a transition moved), in binary mode with every attribute as a header, each
valid against its checked-in schema, keyed and ordered per model, under concurrent writers."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from modelreg.client.public_events import PublicRecord
from modelreg.events.adapters.codec import internal_of
from modelreg.events.domain.public import public_events
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.gen.lineage.v1 import lineage_pb2
from tests.helpers import log_envelopes, unique
from tests.integration.events.conftest import Stack

SCHEMAS = Path(__file__).resolve().parents[3] / "services" / "modelreg" / "events" / "schemas"
HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "ce_dataschema")
WRITERS = 4
UPDATES = 6


async def accepted_envelopes(stack: Stack) -> list[Envelope]:
    """Every accepted event of the four internal topics, in log order per partition, as the
    services themselves judged them (their own outcomes)."""
    out = []
    for service in ("catalog", "versioning", "lineage", "promotion"):
        host = stack.hosts[service]
        assert host.pool is not None
        rows = await host.pool.fetch(
            f"SELECT event_id::text FROM \"{host.spec.schema}\".event_outcomes WHERE verdict = 'accepted'"
        )
        accepted = {r["event_id"] for r in rows}
        topic = stack.settings.kafka.topic(f"modelreg.{service}.v1")
        out += [e for e in await log_envelopes(stack.settings.kafka, topic) if e.event_id in accepted]
    return out


def expected_ids(envelopes: list[Envelope], ns: str) -> list[str]:
    ids = []
    for envelope in envelopes:
        internal = internal_of(envelope)
        if internal is not None and envelope.stream.startswith(f"namespaces/{ns}/"):
            ids += [p.id for p in public_events(internal)]
    return ids


def first_seen(records: list[PublicRecord]) -> list[PublicRecord]:
    seen: set[str] = set()
    out = []
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        if record.id not in seen:
            seen.add(record.id)
            out.append(record)
    return out


@pytest.fixture(scope="module")
async def workload(stack: Stack) -> str:
    ns = unique("pub")
    alice, bob = stack.client("alice"), stack.client("bob")
    try:
        m0, m1, m2 = f"{ns}/m0", f"{ns}/m1", f"{ns}/m2"
        for uri in (m0, m1, m2):
            await alice.catalog.register_model(uri, description="first")
        await alice.catalog.update_model(m0, description="second")
        await alice.versioning.create_version(m0)
        await alice.versioning.create_version(m0)
        dataset = lineage_pb2.Dataset(uri="s3://d/train", digest="sha256:" + "ab" * 32)
        await alice.lineage.record_lineage(f"{m0}/1", lineage_pb2.LineageRecord(datasets=[dataset]))
        await alice.promotion.set_alias(m0, "champion", 1)
        # PRODUCTION is protected: alice requests, bob approves.
        for moves, split in (({"PRODUCTION": 1}, {1: 100}), ({"PRODUCTION": 2}, {1: 90, 2: 10})):
            requested = await alice.promotion.request_promotion(m0, moves, deployments={"prod": split})
            await bob.promotion.approve(requested.name, comment="ok")
        rollback = await alice.promotion.rollback(m0, "PRODUCTION", reason="v2 is slow")
        await bob.promotion.approve(rollback.name, comment="roll back")
        # Serving code alone: a deployment revision, no version; then the CD system acknowledges it.
        image = "ghcr.io/acme/serve@sha256:" + "3" * 64
        code = await alice.promotion.update_deployment(m0, "prod", image=image, reason="hotfix")
        await bob.promotion.approve(code.name, comment="ok")
        await alice.promotion.report_deployment(m0, "prod", "SUCCEEDED", revision=3, detail="rolled out")
        # A production evaluation below the model's threshold: one version.degraded.
        await alice.lineage.set_degradation_thresholds(m0, {"auc": (">=", 0.85)})
        window = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
        for auc in (0.9, 0.8, 0.7):
            await alice.lineage.record_evaluation(f"{m0}/1", {"auc": auc}, kind="PRODUCTION", window=window)
        refused = await alice.promotion.request_promotion(m0, {"PRODUCTION": 2})
        await bob.promotion.reject(refused.name, comment="not yet")
        await alice.versioning.deprecate_version(f"{m0}/2", reason="slow")
        await alice.catalog.archive_model(m1)
        await alice.catalog.restore_model(m1)
        await alice.catalog.delete_model(m2, reason="never used")

        # Concurrent writers on several models: each model's order must hold on the topic.
        async def write(client_index: int, model: str) -> None:
            client = (alice, bob)[client_index % 2] if client_index % 2 == 0 else alice
            for i in range(UPDATES):
                await client.catalog.update_model(model, description=f"w{client_index}-{i}")

        racers = [f"{ns}/race{i}" for i in range(WRITERS)]
        for uri in racers:
            await alice.catalog.register_model(uri)
        await asyncio.gather(*[write(i, uri) for i in range(2) for uri in racers])
    finally:
        await alice.close()
        await bob.close()
    return ns


@pytest.fixture(scope="module")
async def published(stack: Stack, workload: str) -> tuple[list[PublicRecord], list[Envelope]]:
    envelopes = await accepted_envelopes(stack)
    wanted = set(expected_ids(envelopes, workload))
    records = await stack.public_records(lambda rs: wanted <= {r.id for r in rs})
    return [r for r in records if r.subject.startswith(f"namespaces/{workload}/")], envelopes


async def test_every_accepted_change_is_published_once_by_id(
    published: tuple[list[PublicRecord], list[Envelope]], workload: str
) -> None:
    records, envelopes = published
    unique_records = first_seen(records)
    assert sorted(r.id for r in unique_records) == sorted(expected_ids(envelopes, workload))
    types = {r.type.removeprefix("io.modelreg.").removesuffix(".v1") for r in unique_records}
    assert {
        "model.created", "model.updated", "model.archived", "model.restored", "model.deleted",
        "version.created", "version.ready", "version.deprecated", "lineage.recorded",
        "transition.requested", "transition.rejected", "transition.applied", "rollback.applied",
        "stage.moved", "alias.moved", "traffic_split.changed", "deployment.revised", "deployment.reported",
        "evaluation.recorded", "version.degraded",
    } <= types  # fmt: skip
    m0 = f"namespaces/{workload}/models/m0"
    stages = [r.data for r in unique_records if r.subject == m0 and r.type == "io.modelreg.stage.moved.v1"]
    assert [(s["pointer"], s["version"]) for s in stages] == [
        ("PRODUCTION", 1),
        ("PRODUCTION", 2),
        ("PRODUCTION", 1),
    ]
    splits = [r.data["weights"] for r in unique_records if r.type == "io.modelreg.traffic_split.changed.v1"]
    assert splits == [
        [{"version": 1, "percent": 100}],
        [{"version": 1, "percent": 90}, {"version": 2, "percent": 10}],
        # The serving-code change: a new revision with the split as it was.
        [{"version": 1, "percent": 90}, {"version": 2, "percent": 10}],
    ]
    revised = [r.data for r in unique_records if r.type == "io.modelreg.deployment.revised.v1"]
    assert [(d["revision"], d["serving_code"].get("image", "")) for d in revised] == [
        (1, ""),
        (2, ""),
        (3, "ghcr.io/acme/serve@sha256:" + "3" * 64),
    ]
    [ack] = [r.data for r in unique_records if r.type == "io.modelreg.deployment.reported.v1"]
    assert (ack["environment"], ack["revision"], ack["state"], ack["actor"]) == (
        "prod",
        3,
        "SUCCEEDED",
        "alice",
    )
    evaluations = [r.data for r in unique_records if r.type == "io.modelreg.evaluation.recorded.v1"]
    assert [(e["metrics"]["auc"], e["degraded"]) for e in evaluations] == [
        (0.9, []),
        (0.8, ["auc"]),
        (0.7, []),
    ]
    [degraded] = [r.data for r in unique_records if r.type == "io.modelreg.version.degraded.v1"]
    assert (degraded["version"], degraded["metric"], degraded["value"]) == (1, "auc", 0.8)
    [rollback] = [r for r in unique_records if r.type == "io.modelreg.rollback.applied.v1"]
    assert rollback.data["transition"]["rollback_reason"] == "v2 is slow"


async def test_records_are_cloudevents_in_binary_mode_keyed_by_model(
    published: tuple[list[PublicRecord], list[Envelope]],
) -> None:
    records, envelopes = published
    by_id = {e.event_id: e for e in envelopes}
    for record in records:
        assert all(h in record.headers for h in HEADERS), record.headers
        assert record.headers["content-type"] == b"application/json"
        assert record.headers["ce_specversion"] == b"1.0"
        assert record.subject.startswith("namespaces/") and "/models/" in record.subject
        assert record.event.get_extension("partitionkey") == record.subject  # the Kafka key
        internal = by_id[record.id.split("/")[0]]
        assert record.subject == internal.stream and record.data["actor"] == internal.actor
        assert record.event.get_source() == internal.source
        assert record.event.get_time() == internal.occurred_at.ToDatetime(tzinfo=UTC)
    # One model, one partition.
    partitions = defaultdict(set)
    for record in records:
        partitions[record.subject].add(record.partition)
    assert all(len(p) == 1 for p in partitions.values())


async def test_every_published_event_validates_against_its_checked_in_schema(
    published: tuple[list[PublicRecord], list[Envelope]],
) -> None:
    records, _ = published
    for record in records:
        short = record.type.removeprefix("io.modelreg.").removesuffix(".v1")
        schema = json.loads((SCHEMAS / f"{short}.v1.json").read_text())
        assert record.event.get_dataschema() == schema["$id"]
        jsonschema.validate(record.data, schema, format_checker=jsonschema.FormatChecker())


async def test_each_models_events_keep_the_log_order_under_concurrent_writers(
    published: tuple[list[PublicRecord], list[Envelope]], workload: str
) -> None:
    records, envelopes = published
    unique_records = first_seen(records)
    for i in range(WRITERS):
        model = f"namespaces/{workload}/models/race{i}"
        logged = [
            e.event_id
            for e in envelopes
            if e.stream == model and str(e.WhichOneof("payload")).startswith("registered_model")
        ]
        public = [r.id for r in unique_records if r.subject == model]
        assert public == logged and len(public) == 1 + 2 * UPDATES
        descriptions = [
            r.data["registered_model"].get("description", "") for r in unique_records if r.subject == model
        ][1:]
        assert sorted(descriptions) == sorted(f"w{c}-{n}" for c in range(2) for n in range(UPDATES))

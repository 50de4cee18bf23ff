"""Promotion latency on a fresh local stack.

    .venv/bin/python -m bench.promotion [--promotions 200]

Starts Tansu, PostgreSQL and the promotion service as its own process (RBAC on:
alice editor, bob approver), appends versioning facts for a few versions, then
measures from this client process:

- promote: CreateTransitionRequest of PRODUCTION (protected, pending) + the
  ApproveTransitionRequest that applies it; the response of the approval is
  read-your-write, so the pointer has moved when it returns;
- direct: an unprotected transition (alias), applied by its request alone;
- get_pointers, and the floor: a gRPC health Check on the same channel.

Writes bench/out/promotion.json.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from bench import common
from modelreg.devstack import LocalStack
from modelreg.eventlog import GENESIS_HASH, ConsistencyToken, EventContext, build_envelope
from modelreg.eventlog.kafka import KafkaEventLog, KafkaSettings
from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from modelreg.gen.promotion.v1 import promotion_pb2_grpc
from modelreg.gen.versioning.v1 import events_pb2 as versioning_events
from modelreg.gen.versioning.v1 import versioning_pb2
from modelreg.projections.progress import ProgressListener
from modelreg.runtime.host import ensure_topics
from modelreg.runtime.settings import Settings

VERSIONS = 4


def auth(who: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer t-{who}")]


async def seed_versions(kafka: KafkaSettings, dsn: str, model: str) -> None:
    """READY versions 1..VERSIONS, as versioning facts on the real topic, projected by the service."""
    topic = kafka.topic("modelreg.versioning.v1")
    log = KafkaEventLog(kafka)
    await log.start()
    progress = ProgressListener(dsn, "promotion", {topic})
    await progress.start()
    try:
        prev, revision, last = GENESIS_HASH, 0, None
        for n in range(1, VERSIONS + 1):
            version = versioning_pb2.ModelVersion(
                name=f"{model}/versions/{n}", version=n, metrics={"auc": 0.95}
            )
            for field, payload in [
                ("model_version_created", versioning_events.ModelVersionCreated(model_version=version)),
                ("model_version_finalized", versioning_events.ModelVersionFinalized(name=version.name)),
            ]:
                envelope = build_envelope(
                    stream=model,
                    payload_field=field,
                    payload=payload,
                    expected_revision=revision,
                    prev_hash=prev,
                    source="bench",
                    context=EventContext(actor="bench"),
                )
                last = await log.append(topic, envelope)
                prev, revision = envelope.hash, revision + 1
        assert last is not None
        if not await progress.wait_for(ConsistencyToken.after([last]).required, 30):
            raise RuntimeError("the promotion service did not project the versioning facts")
    finally:
        await progress.stop()
        await log.stop()


async def measure(port: int, kafka: KafkaSettings, dsn: str, promotions: int) -> dict[str, dict[str, Any]]:
    model = f"namespaces/bench/models/m{uuid.uuid4().hex[:8]}"
    await seed_versions(kafka, dsn, model)
    results: dict[str, dict[str, Any]] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = promotion_pb2_grpc.PromotionServiceStub(channel)
        results["floor_health_check"] = await common.health_floor(channel, 500)

        async def promote(i: int) -> None:
            created = await stub.CreateTransitionRequest(
                pb.CreateTransitionRequestRequest(
                    parent=model,
                    transition_request=pb.TransitionRequest(
                        moves=[pb.PointerMove(pointer="PRODUCTION", version=1 + i % VERSIONS)],
                        comment="bench",
                    ),
                ),
                metadata=auth("alice"),
            )
            applied = await stub.ApproveTransitionRequest(
                pb.ApproveTransitionRequestRequest(name=created.name, comment="ok"), metadata=auth("bob")
            )
            assert applied.state == pb.TransitionRequest.STATE_APPLIED

        async def direct(i: int) -> None:
            await stub.CreateTransitionRequest(
                pb.CreateTransitionRequestRequest(
                    parent=model,
                    transition_request=pb.TransitionRequest(
                        moves=[pb.PointerMove(pointer="champion", version=1 + i % VERSIONS)]
                    ),
                ),
                metadata=auth("alice"),
            )

        await common.timed(10, promote)  # warm-up
        promoted = await common.timed(promotions, promote)
        results["promote_request_approve_applied"] = common.percentiles(promoted)
        results["direct_transition"] = common.percentiles(await common.timed(promotions, direct))
        results["get_pointers"] = common.percentiles(
            await common.timed(
                promotions * 2,
                lambda i: stub.GetPointers(pb.GetPointersRequest(model=model), metadata=auth("alice")),
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promotions", type=int, default=200)
    args = parser.parse_args()
    console = Console()
    with LocalStack.start() as stack, common.scratch_database(stack, "modelreg_bench") as dsn:
        kafka = KafkaSettings(stack.kafka.bootstrap_servers)
        asyncio.run(ensure_topics(Settings(kafka=kafka, pg_dsn=dsn), ["modelreg.versioning.v1"]))
        env = common.service_env(
            stack,
            dsn,
            MODELREG_AUTH_TOKENS="t-alice=alice,t-bob=bob",
            MODELREG_ROLES="alice=editor@*,bob=approver@*",
        )
        with common.services(["promotion"], env) as ports:
            results = asyncio.run(measure(ports["promotion"], kafka, dsn, args.promotions))
    results["meta"] = common.meta()
    written = common.write_results(results, common.OUT / "promotion.json")
    floor = results["floor_health_check"]["p50_ms"]
    table = Table(title=f"modelreg promotion bench: floor (health Check p50) = {floor:.2f} ms")
    for column in ("measure", "p50 ms", "p95 ms", "p99 ms", "n"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    for name, f in results.items():
        if name == "meta":
            continue
        table.add_row(name, f"{f['p50_ms']:.2f}", f"{f['p95_ms']:.2f}", f"{f['p99_ms']:.2f}", str(f["n"]))
    console.print(table)
    console.print(f"written to {written}")


if __name__ == "__main__":
    main()

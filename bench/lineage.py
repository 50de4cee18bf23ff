"""Lineage queries on a ~10k-node graph across 200 models, beside the gRPC floor.

    .venv/bin/python -m bench.lineage [--calls 300] [--models 200]

Starts Tansu and PostgreSQL, produces the graph's lineage events (1,050 with
supersedes) straight onto the lineage topic, starts the lineage service as its
own process (its projector folds them), and measures from here, sequentially:
3-hop GetLineageSubgraph upstream from a version, downstream from a dataset and
in both directions from a version (every page fetched, page_size 1000),
FindDownstream from a dataset (unbounded), and the floor (a gRPC health Check
on the same channel). Writes bench/out/lineage.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from typing import Any

import asyncpg
import grpc
from rich.console import Console

from bench import common
from modelreg.devstack import LocalStack
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from modelreg.gen.lineage.v1 import lineage_pb2_grpc
from modelreg.runtime.host import ensure_topics
from modelreg.runtime.settings import Settings
from tests.integration.lineage.conftest import Writer
from tests.integration.lineage.graph import Graph, build

TOPIC = "modelreg.lineage.v1"


async def produce(kafka: KafkaSettings, graph: Graph) -> dict[int, int]:
    """Appends the graph's events, chained per stream; returns partition -> end offset."""
    await ensure_topics(Settings(kafka=kafka, pg_dsn=""), [TOPIC])
    writer = Writer(kafka)
    await writer.log.start()
    try:
        recorded = [(s, f, p) for s, f, p in graph.records if f == "lineage_recorded"]
        appended = await writer.rounds(TOPIC, recorded, any_revision=True)
        for index, _, event in graph.supersedes:
            event.superseded_record = appended[index][0]
        supersedes = [(s, "lineage_record_superseded", e) for _, s, e in graph.supersedes]
        appended += await writer.rounds(TOPIC, supersedes)
    finally:
        await writer.log.stop()
    ends: dict[int, int] = {}
    for _, position in appended:
        ends[position.partition] = max(ends.get(position.partition, 0), position.offset + 1)
    return ends


async def wait_projected(dsn: str, topic: str, ends: dict[int, int], timeout: float = 120) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await conn.fetchval("SELECT to_regclass('lineage.checkpoints') IS NOT NULL"):
                rows = await conn.fetch(
                    "SELECT partition, next_offset FROM lineage.checkpoints WHERE topic = $1", topic
                )
                done = {r["partition"]: r["next_offset"] for r in rows}
                if all(done.get(p, 0) >= o for p, o in ends.items()):
                    return
            await asyncio.sleep(0.1)
        raise TimeoutError("the lineage projector did not catch up")
    finally:
        await conn.close()


async def measure(port: int, graph: Graph, calls: int) -> dict[str, dict[str, Any]]:
    rng = random.Random(11)
    used = sorted({e[0] for e in graph.edges if e[0].startswith("dataset:")})
    versions = [f"model_version:{v}" for v in graph.versions]
    results: dict[str, dict[str, Any]] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = lineage_pb2_grpc.LineageServiceStub(channel)

        async def subgraph(start: str, direction: pb.Direction.ValueType) -> int:
            token, nodes = "", 0
            while True:
                page = await stub.GetLineageSubgraph(
                    pb.GetLineageSubgraphRequest(
                        query=pb.SubgraphQuery(start_nodes=[start], direction=direction, max_hops=3),
                        page_size=1000,
                        page_token=token,
                    )
                )
                nodes += len(page.nodes)
                token = page.next_page_token
                if not token:
                    return nodes

        async def downstream(start: str) -> int:
            return len((await stub.FindDownstream(pb.FindDownstreamRequest(node=start))).versions)

        cases = {
            "subgraph 3 hops upstream from a version": (
                versions,
                lambda s: subgraph(s, pb.DIRECTION_UPSTREAM),
            ),
            "subgraph 3 hops downstream from a dataset": (
                used,
                lambda s: subgraph(s, pb.DIRECTION_DOWNSTREAM),
            ),
            "subgraph 3 hops both ways from a version": (
                versions,
                lambda s: subgraph(s, pb.DIRECTION_BIDIRECTIONAL),
            ),
            "FindDownstream from a dataset (unbounded)": (used, downstream),
        }
        for _ in range(50):  # warm up the pool and the plans
            await subgraph(rng.choice(versions), pb.DIRECTION_UPSTREAM)
        results["floor_health_check"] = await common.health_floor(channel, 1000)
        for label, (starts, call) in cases.items():
            samples, sizes = [], []
            for _ in range(calls):
                start = rng.choice(starts)
                started = time.perf_counter()
                sizes.append(await call(start))
                samples.append(time.perf_counter() - started)
            results[label] = {**common.percentiles(samples), "mean_nodes": round(sum(sizes) / len(sizes), 1)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--calls", type=int, default=300, help="calls per query kind")
    args = parser.parse_args()
    console = Console()
    graph = build(f"bench{uuid.uuid4().hex[:6]}", models=args.models)
    with LocalStack.start() as stack, common.scratch_database(stack, "modelreg_lineage") as dsn:
        prefix = f"lineage{uuid.uuid4().hex[:6]}."
        kafka = KafkaSettings(stack.kafka.bootstrap_servers, prefix)
        started = time.perf_counter()
        ends = asyncio.run(produce(kafka, graph))
        produced = time.perf_counter() - started
        with common.services(["lineage"], common.service_env(stack, dsn, prefix)) as ports:
            asyncio.run(wait_projected(dsn, kafka.topic(TOPIC), ends))
            loaded = time.perf_counter() - started
            results = asyncio.run(measure(ports["lineage"], graph, args.calls))
        results["load"] = {
            "events": len(graph.records),
            "nodes": len(graph.node_types),
            "current_edges": len(graph.edges),
            "produce_s": round(produced, 2),
            "produce_and_project_s": round(loaded, 2),
        }
    results["meta"] = common.meta()
    written = common.write_results(results, common.OUT / "lineage.json")
    console.print(results["load"])
    title = f"lineage queries on {len(graph.node_types)} nodes"
    console.print(common.floor_table(title, results, ("mean nodes", "mean_nodes")))
    console.print(f"written to {written}")


if __name__ == "__main__":
    main()

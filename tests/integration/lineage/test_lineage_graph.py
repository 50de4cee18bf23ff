"""A 10k-node lineage graph across 200 models, queried through gRPC and checked
against a plain BFS over the same recorded edges; then replayed from offset 0.

The records are produced straight onto the lineage topic (1,050 events, with
supersedes), the way a replay sees them, and the running service's projector
folds them.
"""

from __future__ import annotations

import random
import time
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg.errors import InvalidArgument
from modelreg.eventlog import ConsistencyToken
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from modelreg.lineage.adapters.projection import LineageProjection
from modelreg.lineage.adapters.reader import PostgresLineageReader
from modelreg.lineage.domain.queries import Direction
from modelreg.projections.replay import digest, rebuild
from modelreg.runtime.settings import Settings
from tests.helpers import unique
from tests.integration.lineage.conftest import LINEAGE, Writer, wait_projected
from tests.integration.lineage.graph import Graph, bfs, build

DIRECTIONS = {
    "up": pb.DIRECTION_UPSTREAM,
    "down": pb.DIRECTION_DOWNSTREAM,
    "both": pb.DIRECTION_BIDIRECTIONAL,
}
TYPES = {
    "dataset": pb.NODE_TYPE_DATASET,
    "preprocessing": pb.NODE_TYPE_PREPROCESSING,
    "code": pb.NODE_TYPE_CODE,
    "config": pb.NODE_TYPE_CONFIG,
    "environment": pb.NODE_TYPE_ENVIRONMENT,
    "training_run": pb.NODE_TYPE_TRAINING_RUN,
    "model_version": pb.NODE_TYPE_MODEL_VERSION,
    "evaluation": pb.NODE_TYPE_EVALUATION,
}
TYPE_NAMES = {v: k for k, v in TYPES.items()}


async def load(writer: Writer, lineage_settings: Settings, graph: Graph) -> ConsistencyToken:
    recorded = [r for r in graph.records if r[1] == "lineage_recorded"]
    results = await writer.rounds(LINEAGE, recorded, any_revision=True)
    positions = [p for _, p in results]
    for index, _, event in graph.supersedes:
        event.superseded_record = results[index][0]
    # A supersede expects the revision at which its record is current: the stream head.
    for _, position in await writer.rounds(
        LINEAGE, [(stream, "lineage_record_superseded", event) for _, stream, event in graph.supersedes]
    ):
        positions.append(position)
    token = ConsistencyToken.after(positions)
    await wait_projected(lineage_settings.pg_dsn, "lineage", token)
    return token


@pytest.fixture(scope="module")
async def graph(writer: Writer, lineage_settings: Settings) -> Graph:
    g = build(unique("g"))
    started = time.perf_counter()
    await load(writer, lineage_settings, g)
    print(
        f"loaded {len(g.records)} events, {len(g.node_types)} nodes in {time.perf_counter() - started:.1f}s"
    )
    return g


async def walk(
    stub: Any, query: pb.SubgraphQuery, page_size: int
) -> tuple[dict[str, pb.NodeType.ValueType], set[tuple[str, str, str]]]:
    nodes: dict[str, pb.NodeType.ValueType] = {}
    edges: set[tuple[str, str, str]] = set()
    token = ""
    pages = 0
    while True:
        page = await stub.GetLineageSubgraph(
            pb.GetLineageSubgraphRequest(query=query, page_size=page_size, page_token=token)
        )
        pages += 1
        for n in page.nodes:
            assert n.id not in nodes, "a node on two pages"
            nodes[n.id] = n.type
        for e in page.edges:
            assert e.source in nodes, "an edge away from its source's page"
            assert e.record and "/lineageRecords/" in e.record
            edges.add((e.source, e.target, e.relation))
        token = page.next_page_token
        if not token:
            return nodes, edges
        assert pages < 200


async def test_the_graph_has_the_expected_size(graph: Graph, database: str) -> None:
    conn = await asyncpg.connect(database)
    try:
        nodes = await conn.fetchval(
            "SELECT count(*) FROM lineage.lineage_nodes WHERE id = ANY($1::text[])", list(graph.node_types)
        )
    finally:
        await conn.close()
    assert len(graph.node_types) >= 10_000
    assert nodes == len(graph.node_types)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_subgraph_equals_a_bfs_over_the_recorded_edges(lineage_stub, graph: Graph, data) -> None:
    ids = sorted(graph.node_types)
    starts = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3), label="starts")
    if data.draw(st.booleans(), label="with an unknown start"):
        starts.append(f"dataset:s3://{graph.prefix}/nowhere@sha256:00000000")
    direction = data.draw(st.sampled_from(list(DIRECTIONS)), label="direction")
    hops = data.draw(st.integers(1, 3 if direction == "both" else 6), label="hops")
    types = data.draw(st.sets(st.sampled_from(list(TYPES)), max_size=3), label="types")
    page_size = data.draw(st.sampled_from([0, 7, 1000]), label="page_size")
    nodes, followed = bfs(graph.edges, set(graph.node_types), starts, direction, hops)
    if types:
        nodes = {n: d for n, d in nodes.items() if graph.node_types[n] in types}
        followed = {e for e in followed if e[0] in nodes and e[1] in nodes}
    if page_size == 7 and len(nodes) > 300:
        page_size = 1000  # the token logic is the same; keep the example fast
    query = pb.SubgraphQuery(
        start_nodes=starts,
        direction=DIRECTIONS[direction],
        max_hops=hops,
        node_types=[TYPES[t] for t in types],
    )
    got_nodes, got_edges = await walk(lineage_stub, query, page_size)
    assert set(got_nodes) == set(nodes)
    assert {TYPE_NAMES[t] for t in got_nodes.values()} <= (types or set(TYPES))
    assert got_edges == followed


async def test_the_oracle_sees_supersedes(graph: Graph) -> None:
    """Guards the property test: superseded datasets must be unreachable, or it could not tell."""
    index, _, _ = graph.supersedes[0]
    old = graph.edges_by_record[index]
    dropped = {e for e in old if e[0].startswith("dataset:")} - graph.edges
    assert dropped


async def test_corrected_records_no_longer_count(lineage_stub, graph: Graph) -> None:
    """Every superseded record at once: one hop around its version and its old datasets."""
    corrected = [correction.record.model_version for _, _, correction in graph.supersedes]
    old_datasets = sorted(
        {
            e[0]
            for index, _, _ in graph.supersedes
            for e in graph.edges_by_record[index]
            if e[0].startswith("dataset:")
        }
    )
    for starts in ([f"model_version:{v}" for v in corrected], old_datasets[:100]):
        nodes, followed = bfs(graph.edges, set(graph.node_types), starts, "both", 1)
        query = pb.SubgraphQuery(start_nodes=starts, direction=pb.DIRECTION_BIDIRECTIONAL, max_hops=1)
        got_nodes, got_edges = await walk(lineage_stub, query, 1000)
        assert set(got_nodes) == set(nodes)
        assert got_edges == followed


async def test_impact_finds_every_affected_version_and_nothing_else(lineage_stub, graph: Graph) -> None:
    rng = random.Random(3)
    used = sorted({e[0] for e in graph.edges if e[0].startswith("dataset:")})
    checked = 0
    for node in rng.sample(used, 25) + [f"model_version:{v}" for v in rng.sample(graph.versions, 10)]:
        depth, _ = bfs(graph.edges, set(graph.node_types), [node], "down", 64)
        expected = sorted(
            (n.removeprefix("model_version:"), d)
            for n, d in depth.items()
            if n.startswith("model_version:") and n != node
        )
        got = await lineage_stub.FindDownstream(pb.FindDownstreamRequest(node=node))
        assert [(v.model_version, v.distance) for v in got.versions] == expected, node
        checked += bool(expected)
    assert checked >= 25  # the sample does reach versions
    dataset = next(d for d in graph.datasets if f"dataset:{d.uri}@{d.digest}" == used[0])
    by_dataset = await lineage_stub.FindDownstream(
        pb.FindDownstreamRequest(dataset=pb.Dataset(uri=dataset.uri, digest=dataset.digest))
    )
    by_node = await lineage_stub.FindDownstream(pb.FindDownstreamRequest(node=used[0]))
    assert by_dataset == by_node
    direct = await lineage_stub.FindDownstream(pb.FindDownstreamRequest(node=used[0], max_hops=1))
    assert {v.model_version for v in direct.versions} == {
        e[1].removeprefix("model_version:") for e in graph.edges if e[0] == used[0]
    }


async def test_a_walk_past_the_node_bound_is_refused(lineage_settings: Settings, graph: Graph) -> None:
    pool = await asyncpg.create_pool(lineage_settings.pg_dsn, min_size=1, max_size=2)
    try:
        reader = PostgresLineageReader(pool, "lineage", max_nodes=500)
        start = [f"model_version:{graph.versions[0]}"]
        small = await reader.walk(start, Direction.UPSTREAM, 1)
        assert 0 < len(small.nodes) <= 500
        with pytest.raises(InvalidArgument) as error:
            await reader.walk(start, Direction.BIDIRECTIONAL, 20, hops_field="max_hops")
        assert [v.field for v in error.value.violations] == ["max_hops"]
    finally:
        await pool.close()


async def test_replay_from_offset_zero_reproduces_the_lineage_tables(
    lineage_settings: Settings, graph: Graph
) -> None:
    topic = lineage_settings.kafka.topic(LINEAGE)
    shadow = unique("lineage_replay_")
    pool = await asyncpg.create_pool(lineage_settings.pg_dsn, min_size=1, max_size=2)
    conn = await asyncpg.connect(lineage_settings.pg_dsn)
    try:
        await rebuild(
            pool, schema=shadow, topic=topic, handler=LineageProjection(), kafka=lineage_settings.kafka
        )
        rebuilt = {
            (r["partition"]): r["next_offset"]
            for r in await conn.fetch(f'SELECT partition, next_offset FROM "{shadow}".checkpoints')
        }
        await wait_projected(
            lineage_settings.pg_dsn, "lineage", ConsistencyToken({(topic, p): o for p, o in rebuilt.items()})
        )
        tables = LineageProjection.read_model_tables
        assert await digest(conn, shadow, tables) == await digest(conn, "lineage", tables)
        heads = (
            "SELECT stream, revision, hash FROM {}.stream_heads"
            " WHERE stream LIKE 'namespaces/%' ORDER BY stream"
        )
        assert await conn.fetch(heads.format(f'"{shadow}"')) == await conn.fetch(heads.format("lineage"))
        assert await conn.fetchval(f'SELECT count(*) FROM "{shadow}".lineage_records') >= len(graph.records)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{shadow}" CASCADE')
        await conn.close()
        await pool.close()

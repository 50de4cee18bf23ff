"""Evaluations over time (issue 20): recorded, listed in time order with filters, compared, shown as
nodes of the version in the graph, and degradation crossings recorded once per crossing; against the
real lineage host on Tansu and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from modelreg.runtime.settings import Settings
from tests.helpers import log_envelopes, run_cli_async, unique, violations
from tests.integration.lineage.conftest import LINEAGE, Writer
from tests.integration.lineage.test_lineage_service import SHA, a_record, token_md

Kind = pb.ModelEvaluation
T0 = datetime(2026, 11, 1, tzinfo=UTC)
GOLDEN = pb.Dataset(uri="s3://data/golden-v3", digest=SHA)


def ts(moment: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(moment)
    return out


async def versions(writer: Writer, *numbers: int) -> tuple[str, list[str], list[tuple[str, str]]]:
    model = f"namespaces/{unique('ns')}/models/{unique('m')}"
    names = [f"{model}/versions/{n}" for n in numbers]
    token = await writer.create_versions(names)
    return model, names, token_md(token)


async def evaluate(
    stub,
    version: str,
    kind: pb.ModelEvaluation.Kind.ValueType,
    metrics: dict[str, float],
    day: int,
    md=None,
    **kw,
):
    fields = (
        {"dataset": GOLDEN}
        if kind == Kind.KIND_OFFLINE
        else {
            "window": pb.TrafficWindow(
                environment="prod",
                start_time=ts(T0 + timedelta(days=day - 1)),
                end_time=ts(T0 + timedelta(days=day)),
            )
        }
    )
    fields |= kw
    return await stub.RecordEvaluation(
        pb.RecordEvaluationRequest(
            parent=version,
            evaluation=pb.ModelEvaluation(
                kind=kind,
                metrics=metrics,
                evaluate_time=ts(T0 + timedelta(days=day)),
                tool="evidently",
                **fields,
            ),
        ),
        metadata=md,
    )


async def listed(stub, parent: str, **kw) -> list[pb.ModelEvaluation]:
    answer = await stub.ListEvaluations(pb.ListEvaluationsRequest(parent=parent, **kw))
    return list(answer.evaluations)


async def test_evaluations_in_time_order_filtered_compared_and_in_the_graph(
    lineage_stub, writer: Writer
) -> None:
    model, (v1, v2), md = await versions(writer, 1, 2)
    # Recorded out of time order; listed by evaluation time.
    await evaluate(lineage_stub, v1, Kind.KIND_OFFLINE, {"auc": 0.90, "f1": 0.70}, 3, md)
    await evaluate(lineage_stub, v1, Kind.KIND_OFFLINE, {"auc": 0.88, "f1": 0.72}, 1, md)
    await evaluate(lineage_stub, v2, Kind.KIND_OFFLINE, {"auc": 0.93, "f1": 0.71, "latency_ms": 12}, 2, md)
    prod = await evaluate(lineage_stub, v2, Kind.KIND_PRODUCTION, {"auc": 0.91}, 4, md, run="runs/77")
    assert prod.name.startswith(f"{v2}/evaluations/") and prod.model_version == v2 and prod.run == "runs/77"

    every = await listed(lineage_stub, model)
    assert [(e.model_version, (e.evaluate_time.ToDatetime(tzinfo=UTC) - T0).days) for e in every] == [
        (v1, 1), (v2, 2), (v1, 3), (v2, 4),
    ]  # fmt: skip
    newest_first = await listed(lineage_stub, model, order_by="evaluate_time desc")
    assert [e.name for e in newest_first] == [e.name for e in reversed(every)]
    assert [e.metrics["auc"] for e in await listed(lineage_stub, v1)] == [0.88, 0.90]
    production = await listed(lineage_stub, model, filter='kind = "PRODUCTION"')
    assert [e.name for e in production] == [prod.name]
    recent = await listed(
        lineage_stub,
        model,
        filter=f'version = 1 AND evaluate_time >= "{(T0 + timedelta(days=2)).isoformat()}"',
    )
    assert [e.metrics["auc"] for e in recent] == [0.90]
    paged = await lineage_stub.ListEvaluations(pb.ListEvaluationsRequest(parent=model, page_size=3))
    rest = await lineage_stub.ListEvaluations(
        pb.ListEvaluationsRequest(parent=model, page_size=3, page_token=paged.next_page_token)
    )
    assert [e.name for e in [*paged.evaluations, *rest.evaluations]] == [e.name for e in every]

    # Side by side on golden-v3: each version's newest evaluation there, with the delta.
    compared = await lineage_stub.CompareVersions(
        pb.CompareVersionsRequest(model_version_a=v1, model_version_b=v2, dataset=GOLDEN)
    )
    rows = {m.metric: m for m in compared.metrics}
    assert rows["auc"].a == pytest.approx(0.90) and rows["auc"].b == pytest.approx(0.93)
    assert rows["auc"].delta == pytest.approx(0.03) and rows["f1"].delta == pytest.approx(0.01)
    assert rows["latency_ms"].HasField("b") and not rows["latency_ms"].HasField("a")
    assert not rows["latency_ms"].HasField("delta")
    error = await _error(
        lineage_stub.CompareVersions(
            pb.CompareVersionsRequest(
                model_version_a=v1, model_version_b=v2, dataset=pb.Dataset(uri="s3://other")
            )
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and v1 in (error.details() or "")

    # The evaluations are nodes of the version in the lineage graph, tied to their dataset.
    graph = await lineage_stub.GetLineageSubgraph(
        pb.GetLineageSubgraphRequest(
            query=pb.SubgraphQuery(
                start_nodes=[f"model_version:{v2}"], max_hops=1, direction=pb.DIRECTION_DOWNSTREAM
            )
        )
    )
    evaluation_nodes = {n.id for n in graph.nodes if n.type == pb.NODE_TYPE_EVALUATION}
    assert f"evaluation:{prod.name.rsplit('/', 1)[1]}" in evaluation_nodes and len(evaluation_nodes) == 2
    by_edge = {(e.source, e.target): e.record for e in graph.edges}
    assert by_edge[(f"model_version:{v2}", f"evaluation:{prod.name.rsplit('/', 1)[1]}")] == prod.name


async def _error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


async def test_bad_evaluations_are_refused_naming_the_field(lineage_stub, writer: Writer) -> None:
    _, (v1,), md = await versions(writer, 1)
    cases = [
        (pb.ModelEvaluation(kind=Kind.KIND_OFFLINE, metrics={"auc": 0.9}), "evaluation.dataset"),
        (pb.ModelEvaluation(kind=Kind.KIND_OFFLINE, dataset=GOLDEN), "evaluation.metrics"),
        (pb.ModelEvaluation(metrics={"auc": 0.9}, dataset=GOLDEN), "evaluation.kind"),
        (
            pb.ModelEvaluation(kind=Kind.KIND_OFFLINE, dataset=GOLDEN, metrics={"auc": float("nan")}),
            "evaluation.metrics.auc",
        ),
        (pb.ModelEvaluation(kind=Kind.KIND_PRODUCTION, metrics={"auc": 0.9}), "evaluation.window"),
        (
            pb.ModelEvaluation(
                kind=Kind.KIND_SHADOW,
                metrics={"auc": 0.9},
                window=pb.TrafficWindow(start_time=ts(T0), end_time=ts(T0 - timedelta(hours=1))),
            ),
            "evaluation.window.end_time",
        ),
        (
            pb.ModelEvaluation(
                kind=Kind.KIND_OFFLINE, metrics={"auc": 0.9}, dataset=pb.Dataset(uri="s3://x", digest="nope")
            ),
            "evaluation.dataset.digest",
        ),
    ]
    for evaluation, field in cases:
        error = await _error(
            lineage_stub.RecordEvaluation(
                pb.RecordEvaluationRequest(parent=v1, evaluation=evaluation), metadata=md
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert violations(error) == [field], error.details()
    error = await _error(
        lineage_stub.ListEvaluations(pb.ListEvaluationsRequest(parent=v1, order_by="auc desc"))
    )
    assert violations(error) == ["order_by"]
    assert await listed(lineage_stub, v1) == []
    missing = f"{v1.rpartition('/versions/')[0]}/versions/9"
    error = await _error(
        lineage_stub.RecordEvaluation(
            pb.RecordEvaluationRequest(
                parent=missing,
                evaluation=pb.ModelEvaluation(kind=Kind.KIND_OFFLINE, dataset=GOLDEN, metrics={"a": 1}),
            )
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def degraded_events(settings: Settings, model: str) -> list[tuple[str, str]]:
    """(evaluation id, metric) of every crossing on the log for `model`."""
    envelopes: list[Envelope] = await log_envelopes(settings.kafka, settings.kafka.topic(LINEAGE))
    return [
        (e.event_id, d.metric)
        for e in envelopes
        if e.stream == model and e.WhichOneof("payload") == "evaluation_recorded"
        for d in e.evaluation_recorded.degraded
    ]


async def test_one_degraded_event_per_crossing(
    lineage_stub, writer: Writer, lineage_settings: Settings
) -> None:
    model, (v1,), md = await versions(writer, 1)
    await lineage_stub.SetDegradationThresholds(
        pb.SetDegradationThresholdsRequest(
            thresholds=pb.DegradationThresholds(
                model=model,
                thresholds=[
                    pb.DegradationThreshold(
                        metric="auc",
                        comparison=pb.DegradationThreshold.COMPARISON_GREATER_OR_EQUAL,
                        threshold=0.85,
                    ),
                    pb.DegradationThreshold(
                        metric="latency_ms", comparison=pb.DegradationThreshold.COMPARISON_LESS, threshold=50
                    ),
                ],
            )
        )
    )
    got = await lineage_stub.GetDegradationThresholds(pb.GetDegradationThresholdsRequest(model=model))
    assert [t.metric for t in got.thresholds] == ["auc", "latency_ms"]
    day = iter(range(1, 100))
    series = [
        ({"auc": 0.90, "latency_ms": 20}, []),  # healthy
        ({"auc": 0.84, "latency_ms": 20}, ["auc"]),  # crosses
        ({"auc": 0.80, "latency_ms": 60}, ["latency_ms"]),  # auc stays degraded: no second auc event
        ({"auc": 0.79}, []),  # still beyond; latency not judged
        ({"auc": 0.88, "latency_ms": 10}, []),  # both recover
        ({"auc": 0.70, "latency_ms": 10}, ["auc"]),  # a new crossing
    ]
    recorded = []
    for metrics, crossed in series:
        evaluation = await evaluate(lineage_stub, v1, Kind.KIND_PRODUCTION, metrics, next(day), md)
        assert list(evaluation.degraded_metrics) == crossed, metrics
        recorded.append(evaluation)
    # OFFLINE and SHADOW results never count as production degradation.
    offline = await evaluate(lineage_stub, v1, Kind.KIND_OFFLINE, {"auc": 0.1}, next(day), md)
    assert list(offline.degraded_metrics) == []
    # A retry of the same request gets the original answer and records nothing new.
    retry = pb.RecordEvaluationRequest(
        parent=v1,
        evaluation=pb.ModelEvaluation(
            kind=Kind.KIND_PRODUCTION,
            metrics={"auc": 0.99},
            window=pb.TrafficWindow(start_time=ts(T0), end_time=ts(T0 + timedelta(hours=1))),
        ),
        request_id="eval-retry-1",
    )
    first = await lineage_stub.RecordEvaluation(retry, metadata=md)
    again = await lineage_stub.RecordEvaluation(retry, metadata=md)
    assert first == again
    assert len(await listed(lineage_stub, v1)) == len(series) + 2

    ids = [e.name.rsplit("/", 1)[1] for e in recorded]
    assert await degraded_events(lineage_settings, model) == [
        (ids[1], "auc"),
        (ids[2], "latency_ms"),
        (ids[5], "auc"),
    ]
    assert [e.name for e in await listed(lineage_stub, model, filter="degraded = true")] == [
        recorded[i].name for i in (1, 2, 5)
    ]


async def test_cli_lists_a_table_and_a_trend_per_version(lineage_host, lineage_stub, writer: Writer) -> None:
    model, (v1, v2), md = await versions(writer, 1, 2)
    for day, auc in enumerate([0.91, 0.90, 0.86, 0.80], start=1):
        await evaluate(lineage_stub, v1, Kind.KIND_PRODUCTION, {"auc": auc}, day, md)
    await evaluate(lineage_stub, v2, Kind.KIND_OFFLINE, {"auc": 0.93}, 5, md)
    uri = f"{model.split('/')[1]}/{model.split('/')[3]}"
    env = {**os.environ, "MODELREG_LINEAGE_ADDR": f"127.0.0.1:{lineage_host.port}", "COLUMNS": "200"}
    result = await run_cli_async("evaluations", "list", uri, "--metric", "auc", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    trend = next(line for line in lines if "█" in line and " 1 " in line)
    assert "█▇▅▁" in trend  # 0.91, 0.90, 0.86, 0.80: falling
    assert any("PRODUCTION" in line and "0.86" in line for line in lines)
    assert any("OFFLINE" in line and "golden-v3" in line for line in lines)


async def test_as_of_keeps_the_evaluations_recorded_by_then(lineage_stub, writer: Writer) -> None:
    """GetLineageSubgraph.as_of: an evaluation recorded by the moment is a node of the version in the
    graph as it stood then, with its edges; one recorded after is not, even when its evaluate_time
    is earlier (as_of is about what the registry knew, not when the model was evaluated)."""
    _, (v1, v2), md = await versions(writer, 1, 2)
    await lineage_stub.RecordLineage(
        pb.RecordLineageRequest(parent=v1, record=a_record(unique("r")), request_id=unique("q")), metadata=md
    )
    before = await evaluate(lineage_stub, v1, Kind.KIND_OFFLINE, {"auc": 0.90}, 3, md)
    prod = await evaluate(lineage_stub, v1, Kind.KIND_PRODUCTION, {"auc": 0.89}, 4, md)
    only = await evaluate(lineage_stub, v2, Kind.KIND_OFFLINE, {"auc": 0.93}, 4, md)  # v2 has no record
    await asyncio.sleep(0.05)  # a later recording time than the moment below, on the service's clock
    after = await evaluate(lineage_stub, v1, Kind.KIND_OFFLINE, {"auc": 0.70}, 1, md)
    after_v2 = await evaluate(lineage_stub, v2, Kind.KIND_OFFLINE, {"auc": 0.71}, 1, md)
    last_before = max(e.create_time.ToDatetime(tzinfo=UTC) for e in (before, prod, only))
    first_after = min(e.create_time.ToDatetime(tzinfo=UTC) for e in (after, after_v2))
    assert last_before < first_after
    moment = last_before + (first_after - last_before) / 2

    async def graph(version: str, at: datetime | None) -> pb.GetLineageSubgraphResponse:
        request = pb.GetLineageSubgraphRequest(
            query=pb.SubgraphQuery(
                start_nodes=[f"model_version:{version}"], max_hops=2, direction=pb.DIRECTION_BIDIRECTIONAL
            )
        )
        if at is not None:
            request.as_of.CopyFrom(ts(at))
        return await lineage_stub.GetLineageSubgraph(request)

    def node(e: pb.ModelEvaluation) -> str:
        return f"evaluation:{e.name.rsplit('/', 1)[1]}"

    ours = {node(e) for e in (before, prod, only, after, after_v2)}  # (the record names one of its own)

    def evaluations_in(answer: pb.GetLineageSubgraphResponse) -> set[str]:
        return {n.id for n in answer.nodes if n.type == pb.NODE_TYPE_EVALUATION} & ours

    now_v1 = await graph(v1, None)
    assert evaluations_in(now_v1) == {node(before), node(prod), node(after)}
    then_v1 = await graph(v1, moment)
    assert evaluations_in(then_v1) == {node(before), node(prod)}
    edges = {(e.source, e.target, e.relation): e.record for e in then_v1.edges}
    assert edges[(f"model_version:{v1}", node(before), "evaluated_by")] == before.name
    golden = f"dataset:{GOLDEN.uri}@{GOLDEN.digest}"
    assert (golden, node(before), "evaluation_data") in edges
    assert not any(node(after) in (s, t) for s, t, _ in edges)
    # The lineage record's part of the graph is there as before (datasets, code...).
    assert {n.id for n in then_v1.nodes} - evaluations_in(then_v1) == (
        {n.id for n in now_v1.nodes} - evaluations_in(now_v1)
    )
    # A version with evaluations and no lineage record exists as of the moment through them.
    then_v2 = await graph(v2, moment)
    assert evaluations_in(then_v2) == {node(only)}
    assert f"model_version:{v2}" in {n.id for n in then_v2.nodes}
    # Before anything was recorded of it, the version is not in the graph at all.
    earliest = min(e.create_time.ToDatetime(tzinfo=UTC) for e in (before, only))
    assert not (await graph(v2, earliest - timedelta(seconds=30))).nodes

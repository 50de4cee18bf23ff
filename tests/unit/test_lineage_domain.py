"""The lineage domain: identities, the graph a record states, validation, decisions, diff."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modelreg.errors import FailedPrecondition, InvalidArgument, NotFound
from modelreg.eventmeta import EventMeta
from modelreg.lineage.domain.commands import RecordLineage, SupersedeRecord
from modelreg.lineage.domain.decide import decide
from modelreg.lineage.domain.events import LineageRecorded, LineageRecordSuperseded
from modelreg.lineage.domain.evolve import evolve
from modelreg.lineage.domain.names import parse_record_name
from modelreg.lineage.domain.queries import (
    Subgraph,
    SubgraphQuery,
    check_subgraph_query,
    diff,
    readable_part,
    reproduction,
    select,
    to_dot,
    to_json,
)
from modelreg.lineage.domain.state import RecordState
from modelreg.lineage.domain.values import (
    MAX_DATASETS,
    CodeRef,
    Config,
    Dataset,
    DatasetRole,
    Edge,
    Environment,
    Evaluation,
    LineageRecord,
    NodeType,
    ParentRelation,
    ParentVersion,
    TrainingRun,
    graph_of,
)
from modelreg.names import parse_version_name

V1 = "namespaces/ns/models/m/versions/1"
V2 = "namespaces/ns/models/m/versions/2"
SHA = "sha256:" + "b" * 64
RID = "0190f0e4-1234-7abc-8def-0123456789ab"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(version: str = V1, **fields: Any) -> LineageRecord:
    values: dict[str, Any] = {
        "datasets": (Dataset("s3://d/train", SHA, row_count=5, role=DatasetRole.TRAIN),),
        "code": (CodeRef("https://git/x", "abc", "train.py"),),
        "config": Config((("epochs", "3"), ("lr", "0.1"))),
    }
    values.update(fields)
    return LineageRecord(model_version=version, **values)


def field_of(error: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [v.field for v in error.value.violations]


def test_version_names() -> None:
    name = parse_version_name(V1, "parent")
    assert (name.namespace, name.model, name.number) == ("ns", "m", 1)
    assert name.model_name == "namespaces/ns/models/m"
    for bad in [
        "",
        "namespaces/ns/models/m",
        "namespaces/NS/models/m/versions/1",
        f"{V1[:-1]}0",
        f"{V1[:-1]}x",
    ]:
        with pytest.raises(InvalidArgument) as error:
            parse_version_name(bad, "parent")
        assert field_of(error) == ["parent"]
    assert parse_record_name(f"{V1}/lineageRecords/{RID}") == (name, RID)
    with pytest.raises(InvalidArgument):
        parse_record_name(f"{V1}/lineageRecords/not-a-uuid")


def test_graph_of_a_record_joins_on_identity() -> None:
    a = record(
        evaluations=(Evaluation("ev1", (("auc", 0.9),)),),
        parents=(ParentVersion(V2, ParentRelation.FINE_TUNED),),
        environment=Environment(python_version="3.12"),
        training_run=TrainingRun("r1", "airflow"),
    )
    nodes, edges = graph_of(a)
    ids = {n.id: n.type for n in nodes}
    assert ids[f"dataset:s3://d/train@{SHA}"] is NodeType.DATASET
    assert ids["code:https://git/x@abc:train.py"] is NodeType.CODE
    assert ids[f"model_version:{V2}"] is NodeType.MODEL_VERSION
    assert ids["training_run:airflow/r1"] is NodeType.TRAINING_RUN
    assert Edge(f"dataset:s3://d/train@{SHA}", f"model_version:{V1}", "train_data") in edges
    assert Edge(f"model_version:{V2}", f"model_version:{V1}", "fine_tuned_from") in edges
    assert (
        Edge(f"model_version:{V1}", "evaluation:ev1", "evaluated_by") in edges
    )  # evaluations are downstream
    # Same content, another version: the same input nodes (the graph joins), a different version node.
    other_nodes, _ = graph_of(record(V2, config=Config((("lr", "0.1"), ("epochs", "3")))))
    shared = {n.id for n in nodes} & {n.id for n in other_nodes}
    assert f"dataset:s3://d/train@{SHA}" in shared
    assert any(i.startswith("config:sha256:") for i in shared)


def test_node_attributes_follow_from_identity_only() -> None:
    """Two records stating one dataset with different details give identical nodes (replay-stable)."""
    a, _ = graph_of(record(datasets=(Dataset("s3://d/x", SHA, schema="a", row_count=1),)))
    b, _ = graph_of(record(V2, datasets=(Dataset("s3://d/x", SHA, schema="b", row_count=2),)))
    pick = lambda nodes: next(n for n in nodes if n.type is NodeType.DATASET)  # noqa: E731
    assert pick(a) == pick(b)


def test_config_digest_is_canonical() -> None:
    assert Config((("a", "1"), ("b", "2"))).digest == Config((("a", "1"), ("b", "2"))).digest
    assert Config((("a", "1"),)).digest != Config((("a", "2"),)).digest
    assert Environment(python_version="3.12").digest != Environment(python_version="3.11").digest


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("record.datasets[0].digest", record(datasets=(Dataset("s3://x", "md5"),))),
        ("record.datasets[0].uri", record(datasets=(Dataset("", SHA),))),
        ("record.datasets[0].row_count", record(datasets=(Dataset("s3://x", SHA, row_count=-1),))),
        (
            "record.datasets",
            record(datasets=tuple(Dataset(f"s3://x/{i}", SHA) for i in range(MAX_DATASETS + 1))),
        ),
        ("record.code[0].repo", record(code=(CodeRef("", "c"),))),
        ("record.config.params", record(config=Config(()))),
        ("record.environment", record(environment=Environment())),
        ("record.environment.lock_digest", record(environment=Environment(lock_digest="nope"))),
        ("record.parents[0].model_version", record(parents=(ParentVersion(V1),))),
        ("record.parents[0].model_version", record(parents=(ParentVersion("x"),))),
        (
            "record.evaluations[0].metrics.auc",
            record(evaluations=(Evaluation("e", (("auc", float("inf")),)),)),
        ),
        ("record", LineageRecord(V1)),
    ],
)
def test_validation_names_the_field(field: str, bad: LineageRecord) -> None:
    with pytest.raises(InvalidArgument) as error:
        decide(None, RecordLineage(bad))
    assert field in field_of(error)


def test_training_run_times_must_be_ordered() -> None:

    run = TrainingRun("r", "o", datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidArgument) as error:
        decide(None, RecordLineage(record(training_run=run)))
    assert field_of(error) == ["record.training_run.end_time"]


def test_decisions() -> None:
    assert decide(None, RecordLineage(record())) == LineageRecorded(record())
    command = SupersedeRecord(RID, V1, record(), "fix")
    current = RecordState(RID, V1, None)
    assert decide(current, command) == LineageRecordSuperseded(RID, record(), "fix")
    with pytest.raises(FailedPrecondition):
        decide(RecordState(RID, V1, "0190f0e4-0000-7abc-8def-0123456789ab"), command)
    with pytest.raises(NotFound):
        decide(None, command)
    with pytest.raises(NotFound):
        decide(RecordState(RID, V2, None), command)
    with pytest.raises(InvalidArgument) as error:
        decide(current, SupersedeRecord(RID, V1, record(), ""))
    assert field_of(error) == ["reason"]
    with pytest.raises(InvalidArgument) as error:
        decide(current, SupersedeRecord(RID, V1, record(V2), "fix"))
    assert field_of(error) == ["record.model_version"]


def test_a_record_folded_from_its_events_can_be_superseded_once() -> None:
    successor = "0190f0e4-0000-7abc-8def-0123456789ab"
    stream = "namespaces/ns/models/m"
    recorded = decide(None, RecordLineage(record()))
    state = evolve(None, recorded, EventMeta(stream, T0, "alice", 1, RID))
    assert state == RecordState(RID, V1, None)
    superseded = decide(state, SupersedeRecord(RID, V1, record(), "fix"))
    after = evolve(state, superseded, EventMeta(stream, T0, "alice", 2, successor))
    assert after == RecordState(RID, V1, successor)
    with pytest.raises(FailedPrecondition) as error:
        decide(after, SupersedeRecord(RID, V1, record(), "again"))
    assert f"already superseded by {V1}/lineageRecords/{successor}" in str(error.value)
    # The successor is a record of its own, current; another record's events leave a state alone.
    assert evolve(None, superseded, EventMeta(stream, T0, "alice", 2, successor)) == RecordState(
        successor, V1, None
    )
    assert evolve(after, recorded, EventMeta(stream, T0, "bob", 3, "other")) == after


def test_subgraph_query_limits() -> None:
    ok = SubgraphQuery(("dataset:x@sha256:00000000",))
    assert check_subgraph_query(ok) is ok
    for bad, field in [
        (SubgraphQuery(()), "query.start_nodes"),
        (SubgraphQuery(("nonsense",)), "query.start_nodes[0]"),
        (SubgraphQuery(("dataset:x",), max_hops=21), "query.max_hops"),
        (SubgraphQuery(("dataset:x",) * 101), "query.start_nodes"),
    ]:
        with pytest.raises(InvalidArgument) as error:
            check_subgraph_query(bad)
        assert field_of(error) == [field]


def test_select_filters_nodes_after_the_walk() -> None:
    e1 = Edge("dataset:d", "model_version:v", "train_data")
    e2 = Edge("model_version:v", "evaluation:e", "evaluated_by")
    graph = Subgraph({"dataset:d": 0, "model_version:v": 1, "evaluation:e": 2}, {e1: "r", e2: "r"})
    only = select(graph, frozenset({NodeType.DATASET, NodeType.EVALUATION}))
    assert only.nodes == {"dataset:d": 0, "evaluation:e": 2}  # reached through the version, which is left out
    assert only.edges == {}
    assert select(graph, frozenset()) is graph


def test_readable_part_leaves_out_hidden_versions_and_what_was_reached_only_through_them() -> None:
    hidden, seen = (
        "model_version:namespaces/b/models/m/versions/1",
        "model_version:namespaces/a/models/m/versions/1",
    )
    edges = {
        Edge("dataset:d", hidden, "train_data"): "r1",
        Edge(hidden, "evaluation:only-b", "evaluated_by"): "r1",
        Edge("dataset:d", seen, "train_data"): "r2",
        Edge(hidden, "model_version:namespaces/a/models/child/versions/1", "parent"): "r3",
    }
    graph = Subgraph(
        {
            "dataset:d": 0,
            hidden: 1,
            seen: 1,
            "evaluation:only-b": 2,
            "model_version:namespaces/a/models/child/versions/1": 2,
        },
        edges,
    )
    part = readable_part(graph, ["dataset:d"], lambda node: "namespaces/b/" in node)
    assert part.nodes == {"dataset:d": 0, seen: 1}
    assert part.edges == {Edge("dataset:d", seen, "train_data"): "r2"}
    assert readable_part(graph, ["dataset:d"], lambda _: False) is graph


def test_diff() -> None:
    a = record(datasets=(Dataset("s3://a", SHA), Dataset("s3://shared", SHA)))
    b = record(
        V2, datasets=(Dataset("s3://b", SHA), Dataset("s3://shared", SHA)), config=Config((("lr", "0.2"),))
    )
    by_type = {d.type: d for d in diff([a], [b])}
    datasets = by_type[NodeType.DATASET]
    assert [n.id for n in datasets.only_in_a] == [f"dataset:s3://a@{SHA}"]
    assert [n.id for n in datasets.only_in_b] == [f"dataset:s3://b@{SHA}"]
    assert datasets.common == (f"dataset:s3://shared@{SHA}",)
    assert by_type[NodeType.CODE].identical
    assert [(c.key, c.a, c.b) for c in by_type[NodeType.CONFIG].changes] == [
        ("epochs", "3", ""),
        ("lr", "0.1", "0.2"),
    ]
    assert all(d.identical for d in diff([a], [record(V2, datasets=a.datasets)]))


def test_reproduction_merges_records_latest_single_values_win() -> None:
    first = record(environment=Environment(python_version="3.11"))
    second = LineageRecord(V1, datasets=first.datasets, environment=Environment(python_version="3.12"))
    merged = reproduction(V1, [("r1", first), ("r2", second)])
    assert merged.record_ids == ("r1", "r2")
    assert merged.record.datasets == first.datasets  # unioned, not doubled
    assert merged.record.environment == Environment(python_version="3.12")
    assert merged.record.config == first.config


def test_exports() -> None:
    nodes, edges = graph_of(record())
    keyed = {(e.source, e.target, e.relation): "rec" for e in edges}
    dot = to_dot(nodes, keyed)
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert dot.count(" -> ") == len(edges)
    tricky = to_dot([], {('a"b', "c\\d", "x"): "r"})
    assert '"a\\"b" -> "c\\\\d"' in tricky
    import json

    document = json.loads(to_json(nodes, keyed))
    assert {n["id"] for n in document["nodes"]} == {n.id for n in nodes}
    assert len(document["edges"]) == len(edges)

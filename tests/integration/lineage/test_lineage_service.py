"""The lineage service through gRPC on a running host, against Tansu and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest

from modelreg.eventlog import TOKEN_METADATA_KEY, ConsistencyToken
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from tests.helpers import count_rows, unique, violations
from tests.integration.lineage.conftest import LINEAGE, Writer

SHA = "sha256:" + "a" * 64


def digest(seed: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def token_md(token: ConsistencyToken | str) -> list[tuple[str, str]]:
    return [(TOKEN_METADATA_KEY, token if isinstance(token, str) else token.encode())]


def a_record(seed: str, **overrides: Any) -> pb.LineageRecord:
    fields: dict[str, Any] = {
        "datasets": [
            pb.Dataset(
                uri=f"s3://data/{seed}/train",
                digest=digest(seed + "t"),
                role=pb.DATASET_ROLE_TRAIN,
                row_count=100,
            ),
            pb.Dataset(uri=f"s3://data/{seed}/test", digest=digest(seed + "e"), role=pb.DATASET_ROLE_TEST),
        ],
        "code": [pb.CodeRef(repo="https://git.example/ml", commit=f"c-{seed}", path="train.py")],
        "config": pb.Config(params={"lr": "0.01", "epochs": "10"}),
        "environment": pb.Environment(python_version="3.12.4", framework="torch==2.4.0"),
        "training_run": pb.TrainingRun(id=f"run-{seed}", orchestrator="airflow"),
        "evaluations": [pb.Evaluation(id=f"eval-{seed}", metrics={"auc": 0.91})],
    }
    fields.update(overrides)
    return pb.LineageRecord(**fields)


async def record(stub, version: str, message: pb.LineageRecord, token: ConsistencyToken | None = None, **kw):
    call = stub.RecordLineage(
        pb.RecordLineageRequest(parent=version, record=message, **kw),
        metadata=token_md(token) if token else None,
    )
    result = await call
    metadata = dict(await call.trailing_metadata())
    return result, metadata[TOKEN_METADATA_KEY]


async def lineage_events(lineage_settings, database: str, schema: str = "lineage") -> int:
    return await count_rows(
        database,
        f'SELECT count(*) FROM "{schema}".event_outcomes WHERE topic = $1',
        lineage_settings.kafka.topic(LINEAGE),
    )


async def test_record_then_read_back_with_the_token(lineage_stub, writer: Writer) -> None:
    ns = unique("ns")
    version = f"namespaces/{ns}/models/churn/versions/1"
    created = await writer.create_versions([version])
    recorded, token = await record(lineage_stub, version, a_record("r1"), created)
    assert recorded.name.startswith(f"{version}/lineageRecords/")
    assert recorded.model_version == version
    assert recorded.creator == "anonymous"
    assert recorded.config.digest.startswith("sha256:")
    assert recorded.superseded_by == ""
    got = await lineage_stub.GetLineageRecord(
        pb.GetLineageRecordRequest(name=recorded.name), metadata=token_md(token)
    )
    assert got == recorded
    listed = await lineage_stub.ListLineageRecords(pb.ListLineageRecordsRequest(parent=version))
    assert [r.name for r in listed.records] == [recorded.name]


async def test_the_version_must_exist(lineage_stub, writer: Writer, lineage_settings, database) -> None:
    ns = unique("ns")
    version = f"namespaces/{ns}/models/m/versions/1"
    before = await lineage_events(lineage_settings, database)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await record(lineage_stub, version, a_record("missing"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert version in error.value.details()

    created = await writer.create_versions([version])
    unknown_parent = f"namespaces/{ns}/models/m/versions/7"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await record(
            lineage_stub,
            version,
            a_record("p", parents=[pb.ParentVersion(model_version=unknown_parent)]),
            created,
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "record.parents[0]" in error.value.details()
    assert await lineage_events(lineage_settings, database) == before  # nothing appended

    await record(lineage_stub, version, a_record("ok"), created)
    deleted = await writer.delete_version(version)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await record(lineage_stub, version, a_record("after-delete"), deleted)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert await lineage_events(lineage_settings, database) == before + 1


BAD = [
    ("parent", "namespaces/x/models/m", a_record("b")),
    ("parent", "namespaces/X/models/m/versions/1", a_record("b")),
    ("parent", "namespaces/x/models/m/versions/0", a_record("b")),
    ("record", "V", None),
    ("record.model_version", "V", a_record("b", model_version="namespaces/x/models/other/versions/1")),
    ("record", "V", pb.LineageRecord()),
    ("record.datasets[0].digest", "V", a_record("b", datasets=[pb.Dataset(uri="s3://x", digest="nohex")])),
    ("record.datasets[0].uri", "V", a_record("b", datasets=[pb.Dataset(uri="", digest=SHA)])),
    (
        "record.datasets[0].uri",
        "V",
        a_record("b", datasets=[pb.Dataset(uri="s3://" + "x" * 3000, digest=SHA)]),
    ),
    (
        "record.datasets[0].role",
        "V",
        a_record("b", datasets=[pb.Dataset(uri="s3://x", digest=SHA, role=pb.DatasetRole.ValueType(9))]),
    ),
    (
        "record.datasets",
        "V",
        a_record("b", datasets=[pb.Dataset(uri=f"s3://x/{i}", digest=SHA) for i in range(257)]),
    ),
    (
        "record",
        "V",
        a_record(
            "b",
            datasets=[pb.Dataset(uri=f"s3://x/{i}", digest=SHA, schema="s" * 16_000) for i in range(40)],
        ),
    ),
    ("record.code[0].commit", "V", a_record("b", code=[pb.CodeRef(repo="r")])),
    ("record.config.params", "V", a_record("b", config=pb.Config())),
    ("record.environment", "V", a_record("b", environment=pb.Environment())),
    ("record.training_run.orchestrator", "V", a_record("b", training_run=pb.TrainingRun(id="r"))),
    ("record.parents[0].model_version", "V", a_record("b", parents=[pb.ParentVersion(model_version="nope")])),
    ("record.parents[0].model_version", "V", a_record("b", parents=[pb.ParentVersion(model_version="V")])),
    (
        "record.evaluations[0].metrics.auc",
        "V",
        a_record("b", evaluations=[pb.Evaluation(id="e", metrics={"auc": float("nan")})]),
    ),
    ("record.evaluations", "V", a_record("b", evaluations=[pb.Evaluation(id=f"e{i}") for i in range(65)])),
]


@pytest.mark.parametrize(("field", "parent", "message"), BAD, ids=[f"{i}-{b[0]}" for i, b in enumerate(BAD)])
async def test_bad_input_is_invalid_argument_naming_the_field_and_appends_nothing(
    lineage_stub,
    writer: Writer,
    lineage_settings,
    database,
    field: str,
    parent: str,
    message: pb.LineageRecord | None,
) -> None:
    version = f"namespaces/{unique('ns')}/models/m/versions/1"
    created = await writer.create_versions([version])
    if message is not None:
        copy = pb.LineageRecord()
        copy.CopyFrom(message)
        for p in copy.parents:
            if p.model_version == "V":
                p.model_version = version
        message = copy
    before = await lineage_events(lineage_settings, database)
    request = pb.RecordLineageRequest(parent=version if parent == "V" else parent)
    if message is not None:
        request.record.CopyFrom(message)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await lineage_stub.RecordLineage(request, metadata=token_md(created))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    assert field in violations(error.value), error.value.details()
    assert await lineage_events(lineage_settings, database) == before


async def test_a_retried_request_id_records_once(
    lineage_stub, writer: Writer, lineage_settings, database
) -> None:
    version = f"namespaces/{unique('ns')}/models/m/versions/1"
    created = await writer.create_versions([version])
    first, _ = await record(lineage_stub, version, a_record("idem"), created, request_id="req-1")
    again, _ = await record(lineage_stub, version, a_record("idem"), created, request_id="req-1")
    assert again.name == first.name
    listed = await lineage_stub.ListLineageRecords(pb.ListLineageRecordsRequest(parent=version))
    assert len(listed.records) == 1


async def test_supersede_keeps_history_and_moves_the_graph(lineage_stub, writer: Writer) -> None:
    ns = unique("ns")
    version = f"namespaces/{ns}/models/m/versions/1"
    created = await writer.create_versions([version])
    old, token = await record(lineage_stub, version, a_record("old"), created)
    wrong = f"dataset:s3://data/old/train@{digest('oldt')}"
    fixed_ds = pb.Dataset(uri="s3://data/fixed", digest=digest("fixed"), role=pb.DATASET_ROLE_TRAIN)
    call = lineage_stub.SupersedeLineageRecord(
        pb.SupersedeLineageRecordRequest(
            name=old.name, record=a_record("old", datasets=[fixed_ds]), reason="wrong training snapshot"
        ),
        metadata=token_md(token),
    )
    new = await call
    token = dict(await call.trailing_metadata())[TOKEN_METADATA_KEY]
    assert new.supersedes == old.name
    assert new.reason == "wrong training snapshot"

    history = await lineage_stub.ListLineageRecords(
        pb.ListLineageRecordsRequest(parent=version, show_superseded=True), metadata=token_md(token)
    )
    assert [r.name for r in history.records] == [old.name, new.name]
    assert history.records[0].superseded_by == new.name
    assert list(history.records[0].datasets) == list(old.datasets)  # the old fact is still readable
    current = await lineage_stub.ListLineageRecords(pb.ListLineageRecordsRequest(parent=version))
    assert [r.name for r in current.records] == [new.name]

    up = await lineage_stub.GetLineageSubgraph(
        pb.GetLineageSubgraphRequest(
            query=pb.SubgraphQuery(start_nodes=[f"model_version:{version}"], max_hops=1)
        )
    )
    ids = {n.id for n in up.nodes}
    assert f"dataset:s3://data/fixed@{digest('fixed')}" in ids
    assert wrong not in ids
    # The superseded dataset node stays, unconnected: nothing downstream of it now.
    down = await lineage_stub.FindDownstream(pb.FindDownstreamRequest(node=wrong))
    assert list(down.versions) == []

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await lineage_stub.SupersedeLineageRecord(
            pb.SupersedeLineageRecordRequest(name=old.name, record=a_record("again"), reason="again")
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await lineage_stub.SupersedeLineageRecord(
            pb.SupersedeLineageRecordRequest(name=new.name, record=a_record("again"), reason="")
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "reason" in violations(error.value)


async def test_diff_names_what_changed(lineage_stub, writer: Writer) -> None:
    ns = unique("ns")
    a, b = f"namespaces/{ns}/models/m/versions/1", f"namespaces/{ns}/models/m/versions/2"
    created = await writer.create_versions([a, b])
    shared = pb.Dataset(uri="s3://data/shared", digest=digest("shared"), role=pb.DATASET_ROLE_TRAIN)
    only_a = pb.Dataset(uri="s3://data/a", digest=digest("a"), role=pb.DATASET_ROLE_TEST)
    only_b = pb.Dataset(uri="s3://data/b", digest=digest("b"), role=pb.DATASET_ROLE_TEST)
    code = pb.CodeRef(repo="https://git.example/ml", commit="same", path="train.py")
    env = pb.Environment(python_version="3.12.4")
    await record(
        lineage_stub,
        a,
        pb.LineageRecord(
            datasets=[shared, only_a],
            code=[code],
            environment=env,
            config=pb.Config(params={"lr": "0.1", "epochs": "5"}),
        ),
        created,
    )
    _, token = await record(
        lineage_stub,
        b,
        pb.LineageRecord(
            datasets=[shared, only_b],
            code=[code],
            environment=env,
            config=pb.Config(params={"lr": "0.01", "epochs": "5", "seed": "1"}),
        ),
        created,
    )
    result = await lineage_stub.DiffLineage(
        pb.DiffLineageRequest(model_version_a=a, model_version_b=b), metadata=token_md(token)
    )
    assert not result.identical
    by_type = {d.type: d for d in result.diffs}
    datasets = by_type[pb.NODE_TYPE_DATASET]
    assert [n.attributes["uri"] for n in datasets.only_in_a] == ["s3://data/a"]
    assert [n.attributes["uri"] for n in datasets.only_in_b] == ["s3://data/b"]
    assert datasets.common == [f"dataset:s3://data/shared@{digest('shared')}"]
    code_diff = by_type[pb.NODE_TYPE_CODE]
    assert not code_diff.only_in_a and not code_diff.only_in_b and len(code_diff.common) == 1
    assert not by_type[pb.NODE_TYPE_ENVIRONMENT].only_in_a and not by_type[pb.NODE_TYPE_ENVIRONMENT].changes
    config = by_type[pb.NODE_TYPE_CONFIG]
    assert [(c.key, c.a, c.b) for c in config.changes] == [("lr", "0.1", "0.01"), ("seed", "", "1")]

    same = await lineage_stub.DiffLineage(pb.DiffLineageRequest(model_version_a=a, model_version_b=a))
    assert same.identical
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await lineage_stub.DiffLineage(
            pb.DiffLineageRequest(model_version_a=a, model_version_b=f"namespaces/{ns}/models/m/versions/9")
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reproduction_info_merges_the_current_records(lineage_stub, writer: Writer) -> None:
    ns = unique("ns")
    parent, child = f"namespaces/{ns}/models/base/versions/1", f"namespaces/{ns}/models/ft/versions/1"
    created = await writer.create_versions([parent, child])
    training = a_record(
        "repro",
        evaluations=[],
        parents=[pb.ParentVersion(model_version=parent, relation=pb.PARENT_RELATION_FINE_TUNED)],
    )
    first, _ = await record(lineage_stub, child, training, created)
    later_eval = pb.LineageRecord(evaluations=[pb.Evaluation(id="eval-late", metrics={"f1": 0.5})])
    second, token = await record(lineage_stub, child, later_eval, created)
    info = await lineage_stub.GetReproductionInfo(
        pb.GetReproductionInfoRequest(model_version=child), metadata=token_md(token)
    )
    assert info.model_version == child
    assert list(info.records) == [first.name, second.name]
    assert list(info.datasets) == list(first.datasets)
    assert list(info.code) == list(first.code)
    assert info.config == first.config and info.environment == first.environment
    assert info.training_run == first.training_run
    assert [p.model_version for p in info.parents] == [parent]
    assert [e.id for e in info.evaluations] == ["eval-late"]


async def test_export_as_json_and_dot(lineage_stub, writer: Writer) -> None:
    ns = unique("ns")
    version = f"namespaces/{ns}/models/m/versions/1"
    created = await writer.create_versions([version])
    _, token = await record(lineage_stub, version, a_record(ns), created)
    # One hop: config and environment are shared with other tests, so further hops reach their graphs.
    query = pb.SubgraphQuery(
        start_nodes=[f"model_version:{version}"], direction=pb.DIRECTION_BIDIRECTIONAL, max_hops=1
    )
    exported = await lineage_stub.ExportLineage(
        pb.ExportLineageRequest(query=query), metadata=token_md(token)
    )
    assert exported.content_type == "application/json"
    document = json.loads(exported.content)
    assert len(document["nodes"]) == 8  # the version, 2 datasets, code, config, environment, run, evaluation
    assert len(document["edges"]) == 7
    assert {e["relation"] for e in document["edges"]} >= {"train_data", "test_data", "evaluated_by"}
    dot = await lineage_stub.ExportLineage(pb.ExportLineageRequest(query=query, format=pb.EXPORT_FORMAT_DOT))
    assert dot.content_type == "text/vnd.graphviz"
    assert dot.content.startswith("digraph lineage {")
    assert dot.content.count(" -> ") == 7
    assert f'"model_version:{version}" -> "evaluation:eval-{ns}"' in dot.content


async def test_downstream_filtered_by_stage(lineage_stub, writer: Writer) -> None:
    ns = unique("ns")
    model = f"namespaces/{ns}/models/m"
    versions = [f"{model}/versions/{n}" for n in (1, 2, 3)]
    created = await writer.create_versions(versions)
    data = pb.Dataset(uri=f"s3://data/{ns}", digest=digest(ns))
    token = created
    for v in versions:
        _, raw = await record(lineage_stub, v, pb.LineageRecord(datasets=[data]), created)
        token = token.merge(ConsistencyToken.decode(raw))
    token = token.merge(await writer.move_pointer(model, "champion", 1))
    token = token.merge(await writer.apply_transition(model, moved=[("PRODUCTION", 2)]))
    everything = await lineage_stub.FindDownstream(
        pb.FindDownstreamRequest(dataset=data), metadata=token_md(token)
    )
    assert [(v.model_version, v.distance) for v in everything.versions] == [(v, 1) for v in versions]

    async def staged(*stages: str) -> list[str]:
        found = await lineage_stub.FindDownstream(
            pb.FindDownstreamRequest(dataset=data, stages=list(stages)), metadata=token_md(token)
        )
        return [v.model_version for v in found.versions]

    assert await staged("production") == [versions[1]]
    assert await staged("champion") == [versions[0]]
    assert await staged("PRODUCTION", "champion") == versions[:2]
    assert await staged("staging") == []
    token = token.merge(await writer.apply_transition(model, moved=[("PRODUCTION", 3)], removed=["champion"]))
    assert await staged("production", "champion") == [versions[2]]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await lineage_stub.FindDownstream(pb.FindDownstreamRequest(dataset=data, stages=["no way"]))
    assert violations(error.value) == ["stages[0]"]


async def test_page_tokens_are_bound_to_their_query(lineage_stub, writer: Writer) -> None:
    version = f"namespaces/{unique('ns')}/models/m/versions/1"
    created = await writer.create_versions([version])
    _, token = await record(lineage_stub, version, a_record(version), created)
    query = pb.SubgraphQuery(start_nodes=[f"model_version:{version}"], max_hops=1)
    first = await lineage_stub.GetLineageSubgraph(
        pb.GetLineageSubgraphRequest(query=query, page_size=2), metadata=token_md(token)
    )
    assert len(first.nodes) == 2 and first.next_page_token
    other = pb.SubgraphQuery(start_nodes=[f"model_version:{version}"], max_hops=2)
    for bad, q in [("garbage!", query), (first.next_page_token, other)]:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await lineage_stub.GetLineageSubgraph(pb.GetLineageSubgraphRequest(query=q, page_token=bad))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(error.value) == ["page_token"]
    for q, field in [
        (pb.SubgraphQuery(), "query.start_nodes"),
        (pb.SubgraphQuery(start_nodes=["x"]), "query.start_nodes[0]"),
        (pb.SubgraphQuery(start_nodes=["dataset:x"], max_hops=99), "query.max_hops"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await lineage_stub.GetLineageSubgraph(pb.GetLineageSubgraphRequest(query=q))
        assert violations(error.value) == [field]


async def test_downstream_of_code(lineage_stub, writer: Writer) -> None:
    ns = unique("ns")
    a, b, c = (f"namespaces/{ns}/models/m/versions/{n}" for n in (1, 2, 3))
    created = await writer.create_versions([a, b, c])
    buggy = pb.CodeRef(repo=f"https://git.example/{ns}", commit="bad", path="train.py")
    fine = pb.CodeRef(repo=f"https://git.example/{ns}", commit="good", path="train.py")
    await record(lineage_stub, a, pb.LineageRecord(code=[buggy]), created)
    await record(lineage_stub, b, pb.LineageRecord(code=[fine]), created)
    # c was fine-tuned from a: it inherits the bad code's impact, two hops away.
    _, token = await record(
        lineage_stub,
        c,
        pb.LineageRecord(code=[fine], parents=[pb.ParentVersion(model_version=a)]),
        created,
    )
    got = await lineage_stub.FindDownstream(pb.FindDownstreamRequest(code=buggy), metadata=token_md(token))
    assert [(v.model_version, v.distance) for v in got.versions] == [(a, 1), (c, 2)]


async def test_racing_supersedes_across_replicas_have_one_winner(
    lineage_stub, lineage_settings, writer: Writer
) -> None:
    """Two API replicas (one projector) correct the same record at once: the log's revision
    check lets one through; the other, decided again on fresh state, finds it superseded."""
    from modelreg.gen.lineage.v1 import lineage_pb2_grpc
    from modelreg.lineage.main import spec
    from modelreg.runtime.host import ServiceHost

    replica = ServiceHost(spec(), lineage_settings)
    await replica.start(port=0, project=False)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
            other = lineage_pb2_grpc.LineageServiceStub(channel)
            for attempt in range(3):
                version = f"namespaces/{unique('ns')}/models/m/versions/1"
                created = await writer.create_versions([version])
                old, token = await record(lineage_stub, version, a_record(f"race{attempt}"), created)
                # Busy stream: append-only records land between read and append of the supersedes.
                noise = [
                    stub.RecordLineage(
                        pb.RecordLineageRequest(parent=version, record=a_record(f"n{attempt}-{i}")),
                        metadata=token_md(token),
                    )
                    for i, stub in enumerate([lineage_stub, other] * 2)
                ]
                supersedes = [
                    stub.SupersedeLineageRecord(
                        pb.SupersedeLineageRecordRequest(
                            name=old.name, record=a_record(f"fix-{i}"), reason=f"fix {i}"
                        ),
                        metadata=token_md(token),
                    )
                    for i, stub in enumerate([lineage_stub, other])
                ]
                results = await asyncio.gather(*supersedes, *noise, return_exceptions=True)
                won = [r for r in results[:2] if isinstance(r, pb.LineageRecord)]
                lost = [r for r in results[:2] if isinstance(r, grpc.aio.AioRpcError)]
                assert len(won) == 1 and len(lost) == 1, results[:2]
                assert lost[0].code() == grpc.StatusCode.FAILED_PRECONDITION
                assert all(isinstance(r, pb.LineageRecord) for r in results[2:]), results[2:]
                history = await lineage_stub.ListLineageRecords(
                    pb.ListLineageRecordsRequest(parent=version, show_superseded=True)
                )
                by_name = {r.name: r for r in history.records}
                assert by_name[old.name].superseded_by == won[0].name
                assert len(history.records) == 1 + 1 + len(noise)
    finally:
        await replica.stop()

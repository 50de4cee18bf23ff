"""Between the lineage protos and the use cases' inputs and outputs."""

from __future__ import annotations

from modelreg.errors import InvalidArgument
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from modelreg.lineage.application.use_cases import Affected, SubgraphPage
from modelreg.lineage.domain.names import record_name
from modelreg.lineage.domain.queries import (
    DEFAULT_HOPS,
    Direction,
    Reproduction,
    StoredRecord,
    SubgraphQuery,
    TypeDiff,
)
from modelreg.lineage.domain.values import (
    LineageRecord,
    Node,
    NodeType,
    code_node_id,
    dataset_node_id,
    version_node_id,
)
from modelreg.lineage.resources import record_from_proto, record_to_proto

MAX_RECORD_BYTES = 512 * 1024
"""A record travels in one event, and a Kafka record is at most 1 MB (eventlog.kafka)."""

DIRECTIONS = {
    pb.DIRECTION_UNSPECIFIED: Direction.UPSTREAM,
    pb.DIRECTION_UPSTREAM: Direction.UPSTREAM,
    pb.DIRECTION_DOWNSTREAM: Direction.DOWNSTREAM,
    pb.DIRECTION_BIDIRECTIONAL: Direction.BIDIRECTIONAL,
}
NODE_TYPES = {
    pb.NODE_TYPE_DATASET: NodeType.DATASET,
    pb.NODE_TYPE_PREPROCESSING: NodeType.PREPROCESSING,
    pb.NODE_TYPE_CODE: NodeType.CODE,
    pb.NODE_TYPE_CONFIG: NodeType.CONFIG,
    pb.NODE_TYPE_ENVIRONMENT: NodeType.ENVIRONMENT,
    pb.NODE_TYPE_TRAINING_RUN: NodeType.TRAINING_RUN,
    pb.NODE_TYPE_MODEL_VERSION: NodeType.MODEL_VERSION,
    pb.NODE_TYPE_EVALUATION: NodeType.EVALUATION,
}
NODE_TYPE_NUMBERS = {v: k for k, v in NODE_TYPES.items()}


def record_in(message: pb.LineageRecord, version: str, has_record: bool) -> LineageRecord:
    """The record of a write request; its model_version defaults to the version written."""
    if not has_record:
        raise InvalidArgument.of("record", "is required")
    size = message.ByteSize()
    if size > MAX_RECORD_BYTES:
        raise InvalidArgument.of("record", f"is {size} bytes encoded, at most {MAX_RECORD_BYTES} are allowed")
    if message.model_version and message.model_version != version:
        raise InvalidArgument.of("record.model_version", f"must be empty or {version}")
    return record_from_proto(message, version)


def record_out(stored: StoredRecord) -> pb.LineageRecord:
    version = stored.record.model_version
    message = record_to_proto(stored.record)
    message.name = record_name(version, stored.id)
    if stored.supersedes:
        message.supersedes = record_name(version, stored.supersedes)
    if stored.superseded_by:
        message.superseded_by = record_name(version, stored.superseded_by)
    message.reason = stored.reason
    message.create_time.FromDatetime(stored.create_time)
    message.creator = stored.creator
    return message


def query_in(message: pb.SubgraphQuery, has_query: bool) -> SubgraphQuery:
    if not has_query:
        raise InvalidArgument.of("query", "is required")
    if message.direction not in DIRECTIONS:
        raise InvalidArgument.of("query.direction", f"unknown direction {message.direction}")
    types = set()
    for i, t in enumerate(message.node_types):
        if t not in NODE_TYPES:
            raise InvalidArgument.of(f"query.node_types[{i}]", f"unknown node type {t}")
        types.add(NODE_TYPES[t])
    return SubgraphQuery(
        start_nodes=tuple(message.start_nodes),
        direction=DIRECTIONS[message.direction],
        max_hops=message.max_hops or DEFAULT_HOPS,
        node_types=frozenset(types),
    )


def node_out(node: Node) -> pb.Node:
    return pb.Node(id=node.id, type=NODE_TYPE_NUMBERS[node.type], attributes=dict(node.attributes))


def subgraph_out(page: SubgraphPage) -> pb.GetLineageSubgraphResponse:
    return pb.GetLineageSubgraphResponse(
        nodes=[node_out(n) for n in page.nodes],
        edges=[pb.Edge(source=s, target=t, relation=r, record=rec) for (s, t, r), rec in page.edges.items()],
        next_page_token=page.next_page_token,
    )


def downstream_target(request: pb.FindDownstreamRequest) -> str:
    kind = request.WhichOneof("target")
    if kind == "dataset":
        if not request.dataset.uri or not request.dataset.digest:
            raise InvalidArgument.of("dataset", "needs uri and digest")
        return dataset_node_id(request.dataset.uri, request.dataset.digest)
    if kind == "code":
        if not request.code.repo or not request.code.commit:
            raise InvalidArgument.of("code", "needs repo and commit")
        return code_node_id(request.code.repo, request.code.commit, request.code.path)
    if kind == "model_version":
        return version_node_id(request.model_version)
    if kind == "node":
        return request.node
    raise InvalidArgument.of("target", "give a dataset, code, model_version or node")


def downstream_out(affected: list[Affected]) -> pb.FindDownstreamResponse:
    return pb.FindDownstreamResponse(
        versions=[pb.AffectedVersion(model_version=a.model_version, distance=a.distance) for a in affected]
    )


def diff_out(diffs: list[TypeDiff]) -> pb.DiffLineageResponse:
    return pb.DiffLineageResponse(
        diffs=[
            pb.NodeTypeDiff(
                type=NODE_TYPE_NUMBERS[d.type],
                only_in_a=[node_out(n) for n in d.only_in_a],
                only_in_b=[node_out(n) for n in d.only_in_b],
                common=list(d.common),
                changes=[pb.ValueChange(key=c.key, a=c.a, b=c.b) for c in d.changes],
            )
            for d in diffs
        ],
        identical=all(d.identical for d in diffs),
    )


def reproduction_out(info: Reproduction) -> pb.ReproductionInfo:
    record = record_to_proto(info.record)
    out = pb.ReproductionInfo(
        model_version=info.model_version,
        datasets=record.datasets,
        preprocessing_steps=record.preprocessing_steps,
        code=record.code,
        parents=record.parents,
        evaluations=record.evaluations,
        records=[record_name(info.model_version, r) for r in info.record_ids],
    )
    if record.HasField("config"):
        out.config.CopyFrom(record.config)
    if record.HasField("environment"):
        out.environment.CopyFrom(record.environment)
    if record.HasField("training_run"):
        out.training_run.CopyFrom(record.training_run)
    return out

"""A generated lineage graph of about 10k nodes across 200 models, and an oracle for it.

The generator writes lineage records as the service would (LineageRecorded and
LineageRecordSuperseded protos) and, independently of the service's code,
computes the node ids (from the documented identity rules) and the current
edges. The oracle walks those edges with a plain BFS.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf.message import Message

from modelreg.gen.lineage.v1 import events_pb2
from modelreg.gen.lineage.v1 import lineage_pb2 as pb

ROLES = {
    pb.DATASET_ROLE_TRAIN: "train",
    pb.DATASET_ROLE_VALIDATION: "validation",
    pb.DATASET_ROLE_TEST: "test",
}
RELATIONS = {pb.PARENT_RELATION_FINE_TUNED: "fine_tuned_from", pb.PARENT_RELATION_DISTILLED: "distilled_from"}

EdgeT = tuple[str, str, str]


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def canonical(values: dict[str, str]) -> str:
    return sha(json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


@dataclass
class Graph:
    prefix: str
    versions: list[str] = field(default_factory=list)
    # (stream, envelope field, payload) in log order; supersedes name the index of the record they replace.
    records: list[tuple[str, str, Message]] = field(default_factory=list)
    supersedes: list[tuple[int, str, events_pb2.LineageRecordSuperseded]] = field(default_factory=list)
    edges_by_record: list[set[EdgeT]] = field(default_factory=list)
    superseded: set[int] = field(default_factory=set)
    node_types: dict[str, str] = field(default_factory=dict)
    datasets: list[pb.Dataset] = field(default_factory=list)

    @property
    def edges(self) -> set[EdgeT]:
        return {e for i, edges in enumerate(self.edges_by_record) if i not in self.superseded for e in edges}

    def add_record(self, message: pb.LineageRecord) -> set[EdgeT]:
        """The node ids and edges a record states, by the documented identity rules."""
        version = f"model_version:{message.model_version}"
        self.node_types[version] = "model_version"
        edges: set[EdgeT] = set()

        def inbound(node: str, kind: str, relation: str) -> None:
            self.node_types.setdefault(node, kind)
            edges.add((node, version, relation))

        for d in message.datasets:
            inbound(f"dataset:{d.uri}@{d.digest}", "dataset", f"{ROLES[d.role]}_data")
        for p in message.preprocessing_steps:
            inbound(f"preprocessing:{p.name}@{p.digest}", "preprocessing", "preprocessed_by")
        for c in message.code:
            inbound(f"code:{c.repo}@{c.commit}:{c.path}", "code", "built_from")
        inbound(f"config:{canonical(dict(message.config.params))}", "config", "configured_by")
        env = message.environment
        fields = {
            "python_version": env.python_version,
            "lock_digest": env.lock_digest,
            "image": env.image,
            "framework": env.framework,
        }
        inbound(f"environment:{canonical(fields)}", "environment", "ran_in")
        run = message.training_run
        inbound(f"training_run:{run.orchestrator}/{run.id}", "training_run", "produced_by")
        for parent in message.parents:
            inbound(f"model_version:{parent.model_version}", "model_version", RELATIONS[parent.relation])
        for e in message.evaluations:
            node = f"evaluation:{e.id}"
            self.node_types.setdefault(node, "evaluation")
            edges.add((version, node, "evaluated_by"))
        return edges


def build(prefix: str, *, models: int = 200, versions_per_model: int = 5, seed: int = 7) -> Graph:
    rng = random.Random(seed)
    g = Graph(prefix)
    datasets = [
        pb.Dataset(uri=f"s3://{prefix}/ds/{i}", digest=sha(f"{prefix}-ds-{i}"), row_count=1000 + i)
        for i in range(12000)
    ]
    steps = [
        pb.PreprocessingStep(name=f"step{i % 40}", digest=sha(f"{prefix}-step-{i}")) for i in range(2500)
    ]
    code = [
        pb.CodeRef(repo=f"https://git.example/{prefix}/repo{i % 25}", commit=f"{i:012x}", path="train.py")
        for i in range(1200)
    ]
    envs = [
        pb.Environment(
            python_version=f"3.{10 + i % 3}.{i % 7}", framework=f"torch==2.{i % 5}", image=f"{prefix}:{i}"
        )
        for i in range(40)
    ]
    for m in range(models):
        model = f"namespaces/{prefix}/models/model-{m:03d}"
        for k in range(1, versions_per_model + 1):
            version = f"{model}/versions/{k}"
            message = pb.LineageRecord(
                model_version=version,
                datasets=[
                    pb.Dataset(
                        uri=d.uri, digest=d.digest, row_count=d.row_count, role=rng.choice(list(ROLES))
                    )
                    for d in rng.sample(datasets, rng.randint(4, 8))
                ],
                preprocessing_steps=rng.sample(steps, rng.randint(1, 2)),
                code=[rng.choice(code)],
                config=pb.Config(
                    params={
                        "graph": prefix,
                        "lr": str(rng.choice([0.1, 0.01, 0.001])),
                        "seed": str(rng.randint(0, 400)),
                    }
                ),
                environment=rng.choice(envs),
                training_run=pb.TrainingRun(id=f"run-{m}-{k}", orchestrator="airflow"),
                evaluations=[pb.Evaluation(id=f"{prefix}-eval-{m}-{k}", metrics={"auc": rng.random()})],
            )
            if k > 1 and rng.random() < 0.6:
                message.parents.add(
                    model_version=f"{model}/versions/{k - 1}", relation=pb.PARENT_RELATION_FINE_TUNED
                )
            if g.versions and rng.random() < 0.15:
                message.parents.add(
                    model_version=rng.choice(g.versions), relation=pb.PARENT_RELATION_DISTILLED
                )
            g.versions.append(version)
            g.records.append((model, "lineage_recorded", events_pb2.LineageRecorded(record=message)))
            g.edges_by_record.append(g.add_record(message))
    # Every 20th record is corrected: new datasets, the rest unchanged.
    for index in range(0, len(g.records), 20):
        stream, _, original = g.records[index]
        assert isinstance(original, events_pb2.LineageRecorded)  # only recordings precede the corrections
        fixed = pb.LineageRecord()
        fixed.CopyFrom(original.record)
        del fixed.datasets[:]
        fixed.datasets.extend(
            pb.Dataset(uri=d.uri, digest=d.digest, role=pb.DATASET_ROLE_TRAIN)
            for d in rng.sample(datasets, 2)
        )
        event = events_pb2.LineageRecordSuperseded(record=fixed, reason="wrong snapshot")
        g.supersedes.append((index, stream, event))
        g.superseded.add(index)
        g.records.append((stream, "lineage_record_superseded", event))
        g.edges_by_record.append(g.add_record(fixed))
    g.datasets = datasets
    return g


def bfs(edges: Iterable[EdgeT], nodes: set[str], start: Iterable[str], direction: str, hops: int):
    """The oracle: (node -> depth, edges followed), over `edges`, the plain way."""
    out: dict[str, list[EdgeT]] = {}
    into: dict[str, list[EdgeT]] = {}
    for e in edges:
        out.setdefault(e[0], []).append(e)
        into.setdefault(e[1], []).append(e)
    depth = {s: 0 for s in start if s in nodes}
    followed: set[EdgeT] = set()
    queue = deque(depth)
    while queue:
        node = queue.popleft()
        if depth[node] == hops:
            continue
        steps = []
        if direction in ("down", "both"):
            steps += [(e, e[1]) for e in out.get(node, [])]
        if direction in ("up", "both"):
            steps += [(e, e[0]) for e in into.get(node, [])]
        for e, far in steps:
            followed.add(e)
            if far not in depth:
                depth[far] = depth[node] + 1
                queue.append(far)
    return depth, followed

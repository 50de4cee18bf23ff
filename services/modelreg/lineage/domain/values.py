"""The lineage of model versions: records, their limits and validation, and the graph they state.

A record lists what one version was made from. It is turned into nodes and
edges by `graph_of`, deterministically, so every consumer of the log (the live
projector, a replay) derives the same graph. Node ids are identity keys: two
records naming the same dataset digest produce the same node, which is what
makes the graph join across models.

Edges point from an input to what it fed: dataset -> version,
parent version -> child version, version -> evaluation. "Upstream" of a node
therefore means against the edges, "downstream" along them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from modelreg.errors import FieldViolation, InvalidArgument
from modelreg.limits import check_text
from modelreg.names import parse_version_name

DIGEST_PATTERN = re.compile(r"^[a-z0-9]{2,16}:[A-Za-z0-9+/=_-]{8,256}$")
MAX_URI_CHARS = 2048
MAX_SCHEMA_BYTES = 16 * 1024
MAX_TEXT_BYTES = 4 * 1024
MAX_SHORT_CHARS = 512
MAX_DATASETS = 256
MAX_PREPROCESSING = 64
MAX_CODE = 16
MAX_PARENTS = 16
MAX_EVALUATIONS = 64
MAX_PARAMS = 512
MAX_PARAM_KEY_CHARS = 256
MAX_PARAM_VALUE_BYTES = 4 * 1024
MAX_METRICS = 256
MAX_NODES_PER_RECORD = 1024
"""All node kinds of one record together; keeps one event well under the 1 MB record limit."""


class NodeType(StrEnum):
    DATASET = "dataset"
    PREPROCESSING = "preprocessing"
    CODE = "code"
    CONFIG = "config"
    ENVIRONMENT = "environment"
    TRAINING_RUN = "training_run"
    MODEL_VERSION = "model_version"
    EVALUATION = "evaluation"


class DatasetRole(StrEnum):
    UNSPECIFIED = "input"
    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


class ParentRelation(StrEnum):
    UNSPECIFIED = "derived_from"
    FINE_TUNED = "fine_tuned_from"
    DISTILLED = "distilled_from"


def canonical_digest(values: object) -> str:
    """sha256 over canonical JSON: equal content gives one node, whatever the key order."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Dataset:
    uri: str
    digest: str
    schema: str = ""
    row_count: int = 0
    role: DatasetRole = DatasetRole.UNSPECIFIED

    @property
    def node_id(self) -> str:
        return dataset_node_id(self.uri, self.digest)


@dataclass(frozen=True, slots=True)
class PreprocessingStep:
    name: str
    digest: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class CodeRef:
    repo: str
    commit: str
    path: str = ""

    @property
    def node_id(self) -> str:
        return code_node_id(self.repo, self.commit, self.path)


@dataclass(frozen=True, slots=True)
class Config:
    params: tuple[tuple[str, str], ...]
    """Sorted by key."""

    @property
    def digest(self) -> str:
        return canonical_digest(dict(self.params))


@dataclass(frozen=True, slots=True)
class Environment:
    python_version: str = ""
    lock_digest: str = ""
    image: str = ""
    framework: str = ""

    def fields(self) -> dict[str, str]:
        return {
            "python_version": self.python_version,
            "lock_digest": self.lock_digest,
            "image": self.image,
            "framework": self.framework,
        }

    @property
    def digest(self) -> str:
        return canonical_digest(self.fields())


@dataclass(frozen=True, slots=True)
class TrainingRun:
    id: str
    orchestrator: str
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class ParentVersion:
    model_version: str
    relation: ParentRelation = ParentRelation.UNSPECIFIED


@dataclass(frozen=True, slots=True)
class Evaluation:
    id: str
    metrics: tuple[tuple[str, float], ...] = ()
    """Sorted by name."""


@dataclass(frozen=True, slots=True)
class LineageRecord:
    model_version: str
    datasets: tuple[Dataset, ...] = ()
    preprocessing_steps: tuple[PreprocessingStep, ...] = ()
    code: tuple[CodeRef, ...] = ()
    config: Config | None = None
    environment: Environment | None = None
    training_run: TrainingRun | None = None
    parents: tuple[ParentVersion, ...] = ()
    evaluations: tuple[Evaluation, ...] = ()


# -- the graph --------------------------------------------------------------


def dataset_node_id(uri: str, digest: str) -> str:
    return f"dataset:{uri}@{digest}"


def code_node_id(repo: str, commit: str, path: str = "") -> str:
    return f"code:{repo}@{commit}:{path}"


def version_node_id(name: str) -> str:
    return f"model_version:{name}"


def node_type_of(node_id: str) -> NodeType | None:
    kind, sep, _ = node_id.partition(":")
    try:
        return NodeType(kind) if sep else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    type: NodeType
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, order=True)
class Edge:
    source: str
    target: str
    relation: str


def graph_of(record: LineageRecord) -> tuple[list[Node], list[Edge]]:
    """The nodes and edges a record states, in a fixed order, without duplicates."""
    version = version_node_id(record.model_version)
    nodes: dict[str, Node] = {
        version: Node(version, NodeType.MODEL_VERSION, (("name", record.model_version),))
    }
    edges: dict[tuple[str, str, str], Edge] = {}

    def add(node: Node, relation: str, *, outgoing: bool = False) -> None:
        nodes.setdefault(node.id, node)
        edge = Edge(version, node.id, relation) if outgoing else Edge(node.id, version, relation)
        edges.setdefault((edge.source, edge.target, edge.relation), edge)

    # Node attributes are derived from the identity alone (what makes two
    # statements the same node), never from details a record adds such as a
    # row count or metrics: records of different models sit on different
    # partitions, so "first statement wins" would depend on the order partitions
    # are folded in, and a replay could disagree with the live read model. The
    # details stay in the records (GetReproductionInfo, ListLineageRecords).
    for d in record.datasets:
        add(Node(d.node_id, NodeType.DATASET, (("uri", d.uri), ("digest", d.digest))), f"{d.role.value}_data")
    for p in record.preprocessing_steps:
        add(
            Node(
                f"preprocessing:{p.name}@{p.digest}",
                NodeType.PREPROCESSING,
                (("name", p.name), ("digest", p.digest)),
            ),
            "preprocessed_by",
        )
    for c in record.code:
        add(
            Node(c.node_id, NodeType.CODE, (("repo", c.repo), ("commit", c.commit), ("path", c.path))),
            "built_from",
        )
    if record.config is not None:
        digest = record.config.digest
        add(
            Node(f"config:{digest}", NodeType.CONFIG, (("digest", digest), *record.config.params)),
            "configured_by",
        )
    if record.environment is not None:
        env = record.environment
        attrs = tuple((k, v) for k, v in env.fields().items() if v)
        add(
            Node(f"environment:{env.digest}", NodeType.ENVIRONMENT, (("digest", env.digest), *attrs)),
            "ran_in",
        )
    if record.training_run is not None:
        run = record.training_run
        add(
            Node(
                f"training_run:{run.orchestrator}/{run.id}",
                NodeType.TRAINING_RUN,
                (("id", run.id), ("orchestrator", run.orchestrator)),
            ),
            "produced_by",
        )
    for parent in record.parents:
        node = Node(
            version_node_id(parent.model_version), NodeType.MODEL_VERSION, (("name", parent.model_version),)
        )
        add(node, parent.relation.value)
    for e in record.evaluations:
        add(Node(f"evaluation:{e.id}", NodeType.EVALUATION, (("id", e.id),)), "evaluated_by", outgoing=True)
    return list(nodes.values()), list(edges.values())


# -- validation -------------------------------------------------------------


class _Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field_name: str, description: str) -> None:
        self.items.append(FieldViolation(field_name, description))

    def text(self, value: str, field_name: str, *, required: bool, max_chars: int = MAX_SHORT_CHARS) -> None:
        if not value:
            if required:
                self.add(field_name, "is required")
        else:
            try:  # short fields allow no control character at all; long free text newline and tab
                check_text(value, field_name, max_chars, multiline=max_chars > MAX_URI_CHARS)
            except InvalidArgument as error:
                self.items.extend(error.violations)

    def digest(self, value: str, field_name: str, *, required: bool = True) -> None:
        if not value:
            if required:
                self.add(field_name, "is required")
        elif not DIGEST_PATTERN.fullmatch(value):
            self.add(field_name, f"{value[:80]!r} must be algo:hex, e.g. sha256:<64 hex>")

    def count(self, items: Sequence[object], field_name: str, limit: int) -> None:
        if len(items) > limit:
            self.add(field_name, f"has {len(items)} entries, at most {limit} are allowed")


def check_dataset_identity(uri: str, digest: str, field_name: str) -> None:
    """A dataset named by uri and digest, as a record's datasets are (an evaluation's dataset)."""
    v = _Violations()
    v.text(uri, f"{field_name}.uri", required=True, max_chars=MAX_URI_CHARS)
    v.digest(digest, f"{field_name}.digest")
    if v.items:
        raise InvalidArgument(*v.items)


def check_record(record: LineageRecord, prefix: str = "record") -> LineageRecord:
    """Raises InvalidArgument naming every bad field; returns the record unchanged."""
    v = _Violations()
    parse_version_name(record.model_version, f"{prefix}.model_version")
    v.count(record.datasets, f"{prefix}.datasets", MAX_DATASETS)
    v.count(record.preprocessing_steps, f"{prefix}.preprocessing_steps", MAX_PREPROCESSING)
    v.count(record.code, f"{prefix}.code", MAX_CODE)
    v.count(record.parents, f"{prefix}.parents", MAX_PARENTS)
    v.count(record.evaluations, f"{prefix}.evaluations", MAX_EVALUATIONS)
    if v.items:
        raise InvalidArgument(*v.items)
    for i, d in enumerate(record.datasets):
        f = f"{prefix}.datasets[{i}]"
        v.text(d.uri, f"{f}.uri", required=True, max_chars=MAX_URI_CHARS)
        v.digest(d.digest, f"{f}.digest")
        v.text(d.schema, f"{f}.schema", required=False, max_chars=MAX_SCHEMA_BYTES)
        if d.row_count < 0:
            v.add(f"{f}.row_count", "must not be negative")
    for i, p in enumerate(record.preprocessing_steps):
        f = f"{prefix}.preprocessing_steps[{i}]"
        v.text(p.name, f"{f}.name", required=True)
        v.digest(p.digest, f"{f}.digest")
        v.text(p.description, f"{f}.description", required=False, max_chars=MAX_TEXT_BYTES)
    for i, c in enumerate(record.code):
        f = f"{prefix}.code[{i}]"
        v.text(c.repo, f"{f}.repo", required=True, max_chars=MAX_URI_CHARS)
        v.text(c.commit, f"{f}.commit", required=True, max_chars=128)
        v.text(c.path, f"{f}.path", required=False, max_chars=1024)
    if record.config is not None:
        f = f"{prefix}.config.params"
        if not record.config.params:
            v.add(f, "is required when config is given")
        v.count(record.config.params, f, MAX_PARAMS)
        for key, value in record.config.params:
            if not key or len(key) > MAX_PARAM_KEY_CHARS:
                v.add(f, f"key {key[:40]!r} must be 1 to {MAX_PARAM_KEY_CHARS} characters")
            v.text(key, f"{f} key", required=False, max_chars=MAX_PARAM_KEY_CHARS)
            v.text(value, f"{f}.{key[:40]}", required=False, max_chars=MAX_PARAM_VALUE_BYTES)
    if record.environment is not None:
        env, f = record.environment, f"{prefix}.environment"
        if not any(env.fields().values()):
            v.add(f, "needs at least one of python_version, lock_digest, image, framework")
        v.text(env.python_version, f"{f}.python_version", required=False, max_chars=64)
        v.digest(env.lock_digest, f"{f}.lock_digest", required=False)
        v.text(env.image, f"{f}.image", required=False, max_chars=1024)
        v.text(env.framework, f"{f}.framework", required=False)
    if record.training_run is not None:
        run, f = record.training_run, f"{prefix}.training_run"
        v.text(run.id, f"{f}.id", required=True)
        v.text(run.orchestrator, f"{f}.orchestrator", required=True, max_chars=128)
        if run.start_time and run.end_time and run.end_time < run.start_time:
            v.add(f"{f}.end_time", "is before start_time")
    for i, parent in enumerate(record.parents):
        f = f"{prefix}.parents[{i}].model_version"
        try:
            parse_version_name(parent.model_version, f)
        except InvalidArgument as error:
            v.items.extend(error.violations)
            continue
        if parent.model_version == record.model_version:
            v.add(f, "a version cannot be its own parent")
    for i, e in enumerate(record.evaluations):
        f = f"{prefix}.evaluations[{i}]"
        v.text(e.id, f"{f}.id", required=True)
        v.count(e.metrics, f"{f}.metrics", MAX_METRICS)
        for name, metric in e.metrics:
            if not name or len(name) > MAX_PARAM_KEY_CHARS:
                v.add(f"{f}.metrics", f"name {name[:40]!r} must be 1 to {MAX_PARAM_KEY_CHARS} characters")
            if not math.isfinite(metric):
                v.add(f"{f}.metrics.{name[:40]}", "must be finite")
    nodes = (
        1
        + len(record.datasets)
        + len(record.preprocessing_steps)
        + len(record.code)
        + len(record.parents)
        + len(record.evaluations)
        + sum(x is not None for x in (record.config, record.environment, record.training_run))
    )
    if nodes > MAX_NODES_PER_RECORD:
        v.add(prefix, f"states {nodes} nodes, at most {MAX_NODES_PER_RECORD} are allowed")
    if not (
        record.datasets
        or record.preprocessing_steps
        or record.code
        or record.config
        or record.environment
        or record.training_run
        or record.parents
        or record.evaluations
    ):
        v.add(prefix, "states no lineage: give at least one dataset, code, config, run, parent or evaluation")
    if v.items:
        raise InvalidArgument(*v.items)
    return record

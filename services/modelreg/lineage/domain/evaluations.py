"""Evaluations of versions over time, and the degradation they may cross: values, validation and the
decision (pure).

An evaluation is an append-only fact on the model's stream. A PRODUCTION evaluation is judged against
the model's degradation thresholds; the decision reads which metrics of the version were breaching
after the previous judgement, so a crossing (healthy, or never judged, to breaching) is recorded exactly
once, in the evaluation's own event, and a metric that stays beyond its threshold records none until an
evaluation finds it healthy again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from modelreg.comparisons import COMPARISONS
from modelreg.errors import InvalidArgument
from modelreg.lineage.domain.values import (
    MAX_PARAM_KEY_CHARS,
    Edge,
    Node,
    NodeType,
    check_dataset_identity,
    dataset_node_id,
    version_node_id,
)

MAX_METRICS = 64
MAX_THRESHOLDS = 64
MAX_TOOL_BYTES = 256
MAX_RUN_BYTES = 2048


class Kind(StrEnum):
    OFFLINE = "OFFLINE"
    SHADOW = "SHADOW"
    PRODUCTION = "PRODUCTION"


@dataclass(frozen=True, slots=True)
class Window:
    environment: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Evaluation:
    model_version: str
    kind: Kind
    metrics: tuple[tuple[str, float], ...]
    """Sorted by name."""
    dataset_uri: str = ""
    dataset_digest: str = ""
    window: Window | None = None
    evaluate_time: datetime | None = None
    """None in a request: the time it is recorded."""
    tool: str = ""
    run: str = ""


@dataclass(frozen=True, slots=True)
class Threshold:
    metric: str
    comparison: str
    """The healthy side: `metric <comparison> threshold`."""
    threshold: float

    def healthy(self, value: float) -> bool:
        return bool(COMPARISONS[self.comparison](value, self.threshold))

    def __str__(self) -> str:
        return f"{self.metric} {self.comparison} {self.threshold:g}"


@dataclass(frozen=True, slots=True)
class Degraded:
    model_version: str
    metric: str
    value: float
    threshold: Threshold


@dataclass(frozen=True, slots=True)
class EvaluationRecorded:
    evaluation: Evaluation
    judged: tuple[str, ...] = ()
    breaching: tuple[str, ...] = ()
    degraded: tuple[Degraded, ...] = ()


@dataclass(frozen=True, slots=True)
class ThresholdsSet:
    model: str
    thresholds: tuple[Threshold, ...]


@dataclass(frozen=True, slots=True)
class VersionHealth:
    """What a PRODUCTION judgement of one version reads: the model's thresholds and which metrics of the
    version breached at its last judgement."""

    thresholds: tuple[Threshold, ...] = ()
    breaching: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RecordEvaluation:
    evaluation: Evaluation
    at: datetime
    """When it is recorded: the evaluation time when none is given."""


@dataclass(frozen=True, slots=True)
class StoredEvaluation:
    id: str
    evaluation: Evaluation
    creator: str
    create_time: datetime
    degraded: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.evaluation.model_version}/evaluations/{self.id}"


@dataclass(frozen=True, slots=True)
class MetricComparison:
    metric: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass(frozen=True, slots=True)
class Comparison:
    a: StoredEvaluation
    b: StoredEvaluation
    metrics: tuple[MetricComparison, ...] = field(default=())


def _metric_name(name: str, where: str) -> None:
    if not name or len(name) > MAX_PARAM_KEY_CHARS or not name.isprintable():
        raise InvalidArgument.of(
            where, f"name {name[:40]!r} must be 1 to {MAX_PARAM_KEY_CHARS} printable characters"
        )


def check_evaluation(evaluation: Evaluation, field_: str = "evaluation") -> Evaluation:
    if not evaluation.metrics:
        raise InvalidArgument.of(f"{field_}.metrics", "give at least one metric")
    if len(evaluation.metrics) > MAX_METRICS:
        raise InvalidArgument.of(f"{field_}.metrics", f"at most {MAX_METRICS}")
    for name, value in evaluation.metrics:
        _metric_name(name, f"{field_}.metrics")
        if not math.isfinite(value):
            raise InvalidArgument.of(f"{field_}.metrics.{name[:40]}", "must be finite")
    if evaluation.dataset_uri or evaluation.dataset_digest:
        check_dataset_identity(evaluation.dataset_uri, evaluation.dataset_digest, f"{field_}.dataset")
    if evaluation.kind is Kind.OFFLINE and not evaluation.dataset_uri:
        raise InvalidArgument.of(
            f"{field_}.dataset", "an OFFLINE evaluation names its dataset (uri and digest)"
        )
    if evaluation.kind is not Kind.OFFLINE and not evaluation.dataset_uri and evaluation.window is None:
        raise InvalidArgument.of(
            f"{field_}.window", f"a {evaluation.kind.value} evaluation names a dataset or a traffic window"
        )
    if evaluation.window is not None and evaluation.window.end <= evaluation.window.start:
        raise InvalidArgument.of(f"{field_}.window.end_time", "must be after start_time")
    if len(evaluation.tool.encode()) > MAX_TOOL_BYTES:
        raise InvalidArgument.of(f"{field_}.tool", f"is longer than {MAX_TOOL_BYTES} bytes")
    if len(evaluation.run.encode()) > MAX_RUN_BYTES:
        raise InvalidArgument.of(f"{field_}.run", f"is longer than {MAX_RUN_BYTES} bytes")
    return evaluation


def check_thresholds(thresholds: tuple[Threshold, ...], field_: str = "thresholds.thresholds") -> None:
    if len(thresholds) > MAX_THRESHOLDS:
        raise InvalidArgument.of(field_, f"at most {MAX_THRESHOLDS}")
    seen: set[str] = set()
    for i, t in enumerate(thresholds):
        _metric_name(t.metric, f"{field_}[{i}].metric")
        if t.metric in seen:
            raise InvalidArgument.of(f"{field_}[{i}].metric", f"{t.metric} has two thresholds")
        seen.add(t.metric)
        if t.comparison not in COMPARISONS:
            raise InvalidArgument.of(f"{field_}[{i}].comparison", "is required")
        if not math.isfinite(t.threshold):
            raise InvalidArgument.of(f"{field_}[{i}].threshold", "must be finite")


def decide_evaluation(health: VersionHealth, command: RecordEvaluation) -> EvaluationRecorded:
    """The evaluation, with its evaluation time; a PRODUCTION one also judged against the thresholds."""
    evaluation = check_evaluation(command.evaluation)
    if evaluation.evaluate_time is None:
        evaluation = Evaluation(
            evaluation.model_version,
            evaluation.kind,
            evaluation.metrics,
            evaluation.dataset_uri,
            evaluation.dataset_digest,
            evaluation.window,
            command.at,
            evaluation.tool,
            evaluation.run,
        )
    if evaluation.kind is not Kind.PRODUCTION:
        return EvaluationRecorded(evaluation)
    values: Mapping[str, float] = dict(evaluation.metrics)
    judged = [t for t in health.thresholds if t.metric in values]
    breaching = [t for t in judged if not t.healthy(values[t.metric])]
    degraded = tuple(
        Degraded(evaluation.model_version, t.metric, values[t.metric], t)
        for t in breaching
        if t.metric not in health.breaching
    )
    return EvaluationRecorded(
        evaluation, tuple(t.metric for t in judged), tuple(t.metric for t in breaching), degraded
    )


def health_after(health: VersionHealth, event: EvaluationRecorded) -> VersionHealth:
    """Which metrics breach after a judgement: the judged ones as judged, the others as before."""
    judged = set(event.judged)
    return VersionHealth(health.thresholds, frozenset((health.breaching - judged) | set(event.breaching)))


def compare(a: StoredEvaluation, b: StoredEvaluation) -> Comparison:
    va, vb = dict(a.evaluation.metrics), dict(b.evaluation.metrics)
    return Comparison(
        a, b, tuple(MetricComparison(m, va.get(m), vb.get(m)) for m in sorted(set(va) | set(vb)))
    )


def evaluation_node_id(evaluation_id: str) -> str:
    return f"evaluation:{evaluation_id}"


def evaluation_nodes(evaluation_id: str, e: Evaluation) -> list[Node]:
    """The evaluation's node, its version's and its dataset's: an evaluation is a node of the version."""
    attributes: tuple[tuple[str, str], ...] = (
        ("id", evaluation_id),
        ("kind", e.kind.value),
        ("evaluate_time", e.evaluate_time.isoformat() if e.evaluate_time else ""),
        ("metrics", ", ".join(f"{k}={v:g}" for k, v in e.metrics)),
    )
    nodes = [
        Node(evaluation_node_id(evaluation_id), NodeType.EVALUATION, attributes),
        Node(version_node_id(e.model_version), NodeType.MODEL_VERSION, (("name", e.model_version),)),
    ]
    if e.dataset_uri:
        nodes.append(
            Node(
                dataset_node_id(e.dataset_uri, e.dataset_digest),
                NodeType.DATASET,
                (("uri", e.dataset_uri), ("digest", e.dataset_digest)),
            )
        )
    return nodes


def evaluation_edges(evaluation_id: str, e: Evaluation) -> list[Edge]:
    """version -evaluated_by-> evaluation, and dataset -evaluation_data-> evaluation."""
    node = evaluation_node_id(evaluation_id)
    edges = [Edge(version_node_id(e.model_version), node, "evaluated_by")]
    if e.dataset_uri:
        edges.append(Edge(dataset_node_id(e.dataset_uri, e.dataset_digest), node, "evaluation_data"))
    return edges

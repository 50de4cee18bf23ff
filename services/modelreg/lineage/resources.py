"""Lineage records between the domain and their protobuf form: the resource that both the API
and the event payloads carry."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from modelreg.errors import InvalidArgument
from modelreg.gen.lineage.v1 import events_pb2
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from modelreg.lineage.domain.evaluations import (
    Degraded,
    EvaluationRecorded,
    Kind,
    StoredEvaluation,
    Threshold,
    ThresholdsSet,
    Window,
)
from modelreg.lineage.domain.evaluations import Evaluation as ModelEvaluation
from modelreg.lineage.domain.values import (
    CodeRef,
    Config,
    Dataset,
    DatasetRole,
    Environment,
    Evaluation,
    LineageRecord,
    ParentRelation,
    ParentVersion,
    PreprocessingStep,
    TrainingRun,
)

ROLES = {
    pb.DATASET_ROLE_UNSPECIFIED: DatasetRole.UNSPECIFIED,
    pb.DATASET_ROLE_TRAIN: DatasetRole.TRAIN,
    pb.DATASET_ROLE_VALIDATION: DatasetRole.VALIDATION,
    pb.DATASET_ROLE_TEST: DatasetRole.TEST,
}
ROLE_NUMBERS = {v: k for k, v in ROLES.items()}
RELATIONS = {
    pb.PARENT_RELATION_UNSPECIFIED: ParentRelation.UNSPECIFIED,
    pb.PARENT_RELATION_FINE_TUNED: ParentRelation.FINE_TUNED,
    pb.PARENT_RELATION_DISTILLED: ParentRelation.DISTILLED,
}
RELATION_NUMBERS = {v: k for k, v in RELATIONS.items()}


def record_from_proto(m: pb.LineageRecord, model_version: str, prefix: str = "record") -> LineageRecord:
    """The domain record; enum values this build does not know are refused, naming the field."""
    datasets = []
    for i, d in enumerate(m.datasets):
        if d.role not in ROLES:
            raise InvalidArgument.of(f"{prefix}.datasets[{i}].role", f"unknown role {d.role}")
        datasets.append(Dataset(d.uri, d.digest, d.schema, d.row_count, ROLES[d.role]))
    parents = []
    for i, p in enumerate(m.parents):
        if p.relation not in RELATIONS:
            raise InvalidArgument.of(f"{prefix}.parents[{i}].relation", f"unknown relation {p.relation}")
        parents.append(ParentVersion(p.model_version, RELATIONS[p.relation]))
    run = None
    if m.HasField("training_run"):
        t = m.training_run
        run = TrainingRun(
            t.id,
            t.orchestrator,
            t.start_time.ToDatetime(tzinfo=UTC) if t.HasField("start_time") else None,
            t.end_time.ToDatetime(tzinfo=UTC) if t.HasField("end_time") else None,
        )
    env = None
    if m.HasField("environment"):
        e = m.environment
        env = Environment(e.python_version, e.lock_digest, e.image, e.framework)
    return LineageRecord(
        model_version=model_version,
        datasets=tuple(datasets),
        preprocessing_steps=tuple(
            PreprocessingStep(p.name, p.digest, p.description) for p in m.preprocessing_steps
        ),
        code=tuple(CodeRef(c.repo, c.commit, c.path) for c in m.code),
        config=Config(tuple(sorted(m.config.params.items()))) if m.HasField("config") else None,
        environment=env,
        training_run=run,
        parents=tuple(parents),
        evaluations=tuple(Evaluation(e.id, tuple(sorted(e.metrics.items()))) for e in m.evaluations),
    )


def record_to_proto(record: LineageRecord) -> pb.LineageRecord:
    m = pb.LineageRecord(model_version=record.model_version)
    for d in record.datasets:
        m.datasets.add(
            uri=d.uri, digest=d.digest, schema=d.schema, row_count=d.row_count, role=ROLE_NUMBERS[d.role]
        )
    for p in record.preprocessing_steps:
        m.preprocessing_steps.add(name=p.name, digest=p.digest, description=p.description)
    for c in record.code:
        m.code.add(repo=c.repo, commit=c.commit, path=c.path)
    if record.config is not None:
        m.config.params.update(dict(record.config.params))
        m.config.digest = record.config.digest
    if record.environment is not None:
        env = record.environment
        m.environment.CopyFrom(
            pb.Environment(
                python_version=env.python_version,
                lock_digest=env.lock_digest,
                image=env.image,
                framework=env.framework,
                digest=env.digest,
            )
        )
    if record.training_run is not None:
        run = record.training_run
        m.training_run.id = run.id
        m.training_run.orchestrator = run.orchestrator
        if run.start_time is not None:
            m.training_run.start_time.FromDatetime(run.start_time)
        if run.end_time is not None:
            m.training_run.end_time.FromDatetime(run.end_time)
    for parent in record.parents:
        m.parents.add(model_version=parent.model_version, relation=RELATION_NUMBERS[parent.relation])
    for e in record.evaluations:
        m.evaluations.add(id=e.id, metrics=dict(e.metrics))
    return m


# -- evaluations and degradation thresholds ---------------------------------------------

KINDS = {
    pb.ModelEvaluation.KIND_OFFLINE: Kind.OFFLINE,
    pb.ModelEvaluation.KIND_SHADOW: Kind.SHADOW,
    pb.ModelEvaluation.KIND_PRODUCTION: Kind.PRODUCTION,
}
KIND_NUMBERS = {v: k for k, v in KINDS.items()}
COMPARISONS = {
    pb.DegradationThreshold.COMPARISON_GREATER_OR_EQUAL: ">=",
    pb.DegradationThreshold.COMPARISON_GREATER: ">",
    pb.DegradationThreshold.COMPARISON_LESS_OR_EQUAL: "<=",
    pb.DegradationThreshold.COMPARISON_LESS: "<",
}
COMPARISON_NUMBERS = {v: k for k, v in COMPARISONS.items()}


def _dt(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def evaluation_from_proto(
    m: pb.ModelEvaluation, model_version: str, field: str = "evaluation"
) -> ModelEvaluation:
    kind = KINDS.get(m.kind)
    if kind is None:
        raise InvalidArgument.of(f"{field}.kind", "is required: OFFLINE, SHADOW or PRODUCTION")
    window = None
    if m.HasField("window"):
        w = m.window
        if not w.HasField("start_time") or not w.HasField("end_time"):
            raise InvalidArgument.of(f"{field}.window", "needs start_time and end_time")
        window = Window(w.environment, _dt(w.start_time), _dt(w.end_time))
    return ModelEvaluation(
        model_version,
        kind,
        tuple(sorted(m.metrics.items())),
        m.dataset.uri,
        m.dataset.digest,
        window,
        _dt(m.evaluate_time) if m.HasField("evaluate_time") else None,
        m.tool,
        m.run,
    )


def evaluation_to_proto(e: ModelEvaluation) -> pb.ModelEvaluation:
    m = pb.ModelEvaluation(model_version=e.model_version, kind=KIND_NUMBERS[e.kind], tool=e.tool, run=e.run)
    m.metrics.update(dict(e.metrics))
    if e.dataset_uri:
        m.dataset.CopyFrom(pb.Dataset(uri=e.dataset_uri, digest=e.dataset_digest))
    if e.window is not None:
        m.window.environment = e.window.environment
        m.window.start_time.FromDatetime(e.window.start)
        m.window.end_time.FromDatetime(e.window.end)
    if e.evaluate_time is not None:
        m.evaluate_time.FromDatetime(e.evaluate_time)
    return m


def stored_to_proto(s: StoredEvaluation) -> pb.ModelEvaluation:
    m = evaluation_to_proto(s.evaluation)
    m.name = s.name
    m.creator = s.creator
    m.create_time.FromDatetime(s.create_time)
    m.degraded_metrics.extend(s.degraded)
    return m


def threshold_from_proto(m: pb.DegradationThreshold) -> Threshold:
    return Threshold(m.metric, COMPARISONS.get(m.comparison, ""), m.threshold)


def threshold_to_proto(t: Threshold) -> pb.DegradationThreshold:
    return pb.DegradationThreshold(
        metric=t.metric,
        comparison=COMPARISON_NUMBERS.get(t.comparison, pb.DegradationThreshold.COMPARISON_UNSPECIFIED),
        threshold=t.threshold,
    )


def thresholds_to_proto(model: str, thresholds: tuple[Threshold, ...]) -> pb.DegradationThresholds:
    return pb.DegradationThresholds(model=model, thresholds=[threshold_to_proto(t) for t in thresholds])


def recorded_to_proto(event: EvaluationRecorded) -> events_pb2.EvaluationRecorded:
    return events_pb2.EvaluationRecorded(
        evaluation=evaluation_to_proto(event.evaluation),
        judged=list(event.judged),
        breaching=list(event.breaching),
        degraded=[
            events_pb2.VersionDegraded(
                model_version=d.model_version,
                metric=d.metric,
                value=d.value,
                threshold=threshold_to_proto(d.threshold),
            )
            for d in event.degraded
        ],
    )


def recorded_from_proto(m: events_pb2.EvaluationRecorded) -> EvaluationRecorded:
    evaluation = evaluation_from_proto(m.evaluation, m.evaluation.model_version)
    return EvaluationRecorded(
        evaluation,
        tuple(m.judged),
        tuple(m.breaching),
        tuple(
            Degraded(d.model_version, d.metric, d.value, threshold_from_proto(d.threshold))
            for d in m.degraded
        ),
    )


def thresholds_set_to_proto(event: ThresholdsSet) -> events_pb2.DegradationThresholdsSet:
    return events_pb2.DegradationThresholdsSet(thresholds=thresholds_to_proto(event.model, event.thresholds))


def thresholds_set_from_proto(m: events_pb2.DegradationThresholdsSet) -> ThresholdsSet:
    return ThresholdsSet(m.thresholds.model, tuple(threshold_from_proto(t) for t in m.thresholds.thresholds))

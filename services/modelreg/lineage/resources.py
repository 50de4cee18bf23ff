"""Lineage records between the domain and their protobuf form: the resource that both the API
and the event payloads carry."""

from __future__ import annotations

from datetime import UTC

from modelreg.errors import InvalidArgument
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
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

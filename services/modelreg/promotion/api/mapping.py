"""Protobuf requests -> validated domain values, and domain values -> protobuf.

Every violation names the field, and is raised before anything is appended.
"""

from __future__ import annotations

import re

from modelreg.errors import InvalidArgument
from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from modelreg.limits import check_text
from modelreg.names import ID_PATTERN, check_id, parse_model_name, parse_parent
from modelreg.promotion import resources
from modelreg.promotion.domain.queries import DeploymentRevision, EnvironmentStatus
from modelreg.promotion.domain.state import Pointers
from modelreg.promotion.domain.values import (
    DEPLOYMENT_FIELDS,
    MAX_COMMENT_BYTES,
    MAX_DETAIL_BYTES,
    STAGE_TARGETS,
    Deployment,
    Move,
    Policy,
    Report,
    ServingCode,
    Weight,
    canonical_json,
    check_policy,
)

PROTECTED_PATTERN = re.compile(r"^[A-Za-z0-9._*/?\[\]!-]{1,160}$")


def model_name(name: str, field: str) -> str:
    return str(parse_model_name(name, field))


def namespace_name(name: str, field: str) -> str:
    return f"namespaces/{parse_parent(name, field)}"


def policy_parent(name: str, field: str) -> str:
    if not name:
        raise InvalidArgument.of(field, "is required")
    return namespace_name(name, field) if name.count("/") == 1 else model_name(name, field)


def watch_parent(name: str) -> str:
    return policy_parent(name, "parent") if name else ""


def request_name(name: str, field: str = "name") -> str:
    if not name:
        raise InvalidArgument.of(field, "is required")
    model, sep, request_id = name.rpartition("/transitionRequests/")
    if not sep:
        raise InvalidArgument.of(field, f"{name[:300]!r} is not of the form .../transitionRequests/{{id}}")
    model_name(model, field)
    check_id(request_id, field)
    return name


def comment(value: str, field: str) -> str:
    return check_text(value, field, MAX_COMMENT_BYTES, multiline=True)


def pointer(value: str, field: str) -> str:
    if value in STAGE_TARGETS:
        return value
    if not value:
        raise InvalidArgument.of(field, "is required")
    if not ID_PATTERN.fullmatch(value):
        raise InvalidArgument.of(
            field, f"{value[:140]!r} is neither a stage ({', '.join(STAGE_TARGETS)}) nor an alias name"
        )
    return value


def moves(request: pb.TransitionRequest, field: str) -> list[Move]:
    return [
        Move(pointer(m.pointer, f"{field}.moves[{i}].pointer"), m.version)
        for i, m in enumerate(request.moves)
    ]


def deployments(request: pb.TransitionRequest, field: str) -> list[Deployment]:
    return [deployment(d, f"{field}.deployments[{i}]") for i, d in enumerate(request.deployments)]


def deployment(message: pb.Deployment, field: str) -> Deployment:
    """A requested spec: names checked, configuration and schema in canonical JSON. The output-only
    revision numbers are ignored."""
    environment(message.environment, f"{field}.environment")
    code = message.serving_code
    return Deployment(
        message.environment,
        tuple(Weight(w.version, w.percent) for w in message.weights),
        ServingCode(code.image, code.repository, code.commit),
        canonical_json(message.runtime_config, f"{field}.runtime_config"),
        canonical_json(message.config_schema, f"{field}.config_schema"),
    )


def environment(value: str, field: str) -> str:
    check_id(value, field)
    return value


def policy(message: pb.PromotionPolicy) -> Policy:
    for i, pattern in enumerate(message.protected):
        if not PROTECTED_PATTERN.fullmatch(pattern):
            raise InvalidArgument.of(f"policy.protected[{i}]", f"{pattern[:160]!r} is not a name pattern")
    for i, check in enumerate(message.required_checks):
        if check.kind not in resources.KIND_FROM_PROTO:
            raise InvalidArgument.of(f"policy.required_checks[{i}].kind", "is required")
    value = resources.policy_from_proto(message)
    check_policy(value)
    return value


def pointers_to_proto(p: Pointers) -> pb.Pointers:
    stages = {k: v for k, v in p.pointers.items() if k in STAGE_TARGETS}
    aliases = {k: v for k, v in p.pointers.items() if k not in STAGE_TARGETS}
    return pb.Pointers(
        model=p.model,
        stages=stages,
        aliases=aliases,
        archived_versions=sorted(p.archived),
        deployments=[resources.deployment_to_proto(d) for _, d in sorted(p.live_deployments.items())],
        etag=p.etag,
    )


def deployment_fields(paths: list[str], field: str) -> frozenset[str]:
    """An UpdateDeployment mask: empty = every field."""
    if not paths:
        return frozenset(DEPLOYMENT_FIELDS)
    for i, path in enumerate(paths):
        if path not in DEPLOYMENT_FIELDS:
            raise InvalidArgument.of(
                f"{field}.paths[{i}]", f"{path[:80]!r} is not one of {', '.join(DEPLOYMENT_FIELDS)}"
            )
    return frozenset(paths)


def revision_to_proto(r: DeploymentRevision) -> pb.DeploymentRevision:
    message = pb.DeploymentRevision(
        model=r.model,
        deployment=resources.deployment_to_proto(r.deployment),
        transition_request=r.transition_request,
        requester=r.requester,
        reason=r.reason,
        applied_by=r.applied_by,
    )
    message.apply_time.FromDatetime(r.apply_time)
    return message


def report(message: pb.DeploymentReport, field: str) -> Report:
    model = model_name(message.model, f"{field}.model")
    environment(message.environment, f"{field}.environment")
    state = resources.REPORT_STATE_FROM_PROTO.get(message.state)
    if state is None:
        raise InvalidArgument.of(f"{field}.state", "is required: IN_PROGRESS, SUCCEEDED or FAILED")
    detail = check_text(message.detail, f"{field}.detail", MAX_DETAIL_BYTES, multiline=True)
    return Report(model, message.environment, message.revision, message.version, state, detail)


def status_to_proto(model: str, statuses: list[EnvironmentStatus]) -> pb.DeploymentStatus:
    out = pb.DeploymentStatus(model=model)
    for s in statuses:
        item = out.environments.add(environment=s.environment, drift=s.drift, drift_reason=s.drift_reason)
        if s.desired is not None:
            item.desired.CopyFrom(resources.deployment_to_proto(s.desired))
        if s.acknowledged is not None:
            item.acknowledged.CopyFrom(resources.report_to_proto(s.acknowledged))
    return out

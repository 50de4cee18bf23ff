"""The resources of modelreg.promotion.v1 (policy, request, deployment, approval, denial, history entry)
<-> domain values.

The API (api/) and the event codec (adapters/codec.py) both carry these messages and both convert them
here, so the log and the API can never disagree on what a field means.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.promotion.domain.events import AccessDenied, PointerChange
from modelreg.promotion.domain.queries import HistoryEntry
from modelreg.promotion.domain.state import Request
from modelreg.promotion.domain.values import (
    DEFAULT_PROTECTED,
    Approval,
    Check,
    CheckKind,
    Deployment,
    Move,
    Policy,
    Report,
    ReportState,
    RequestState,
    ServingCode,
    Weight,
)

pb = promotion_pb2

_KIND = {
    CheckKind.VERSION_READY: pb.RequiredCheck.KIND_VERSION_READY,
    CheckKind.SIGNATURE_PRESENT: pb.RequiredCheck.KIND_SIGNATURE_PRESENT,
    CheckKind.LINEAGE_RECORDED: pb.RequiredCheck.KIND_LINEAGE_RECORDED,
    CheckKind.METRIC_THRESHOLD: pb.RequiredCheck.KIND_METRIC_THRESHOLD,
    CheckKind.RECENT_EVALUATION: pb.RequiredCheck.KIND_RECENT_EVALUATION,
}
KIND_FROM_PROTO = {v: k for k, v in _KIND.items()}
_COMPARISON = {
    ">=": pb.RequiredCheck.COMPARISON_GREATER_OR_EQUAL,
    ">": pb.RequiredCheck.COMPARISON_GREATER,
    "<=": pb.RequiredCheck.COMPARISON_LESS_OR_EQUAL,
    "<": pb.RequiredCheck.COMPARISON_LESS,
}
COMPARISON_FROM_PROTO = {v: k for k, v in _COMPARISON.items()}
_STATE = {
    RequestState.PENDING: pb.TransitionRequest.STATE_PENDING,
    RequestState.APPLIED: pb.TransitionRequest.STATE_APPLIED,
    RequestState.REJECTED: pb.TransitionRequest.STATE_REJECTED,
    RequestState.CANCELLED: pb.TransitionRequest.STATE_CANCELLED,
    RequestState.SUPERSEDED: pb.TransitionRequest.STATE_SUPERSEDED,
}
STATE_FROM_PROTO = {v: k for k, v in _STATE.items()}


def _ts(message: Timestamp, value: datetime | None) -> None:
    if value is not None:
        message.FromDatetime(value)


def _dt(message: Timestamp) -> datetime:
    return message.ToDatetime(tzinfo=UTC)


def check_to_proto(check: Check) -> pb.RequiredCheck:
    message = pb.RequiredCheck(
        kind=_KIND[check.kind],
        metric=check.metric,
        comparison=_COMPARISON.get(check.comparison, pb.RequiredCheck.COMPARISON_UNSPECIFIED),
        threshold=check.threshold,
        dataset_uri=check.dataset_uri,
        dataset_digest=check.dataset_digest,
    )
    if check.max_age_s:
        message.max_age.FromNanoseconds(int(check.max_age_s * 1e9))
    return message


def check_from_proto(message: pb.RequiredCheck) -> Check:
    return Check(
        KIND_FROM_PROTO[message.kind],
        message.metric,
        COMPARISON_FROM_PROTO.get(message.comparison, ""),
        message.threshold,
        message.dataset_uri,
        message.dataset_digest,
        message.max_age.ToNanoseconds() / 1e9 if message.HasField("max_age") else 0.0,
    )


def policy_to_proto(parent: str, policy: Policy, *, default: bool = False) -> pb.PromotionPolicy:
    return pb.PromotionPolicy(
        parent=parent,
        protected=list(policy.protected),
        required_approvals=policy.required_approvals,
        separation_of_duties=policy.separation_of_duties,
        required_checks=[check_to_proto(c) for c in policy.checks],
        emergency_rollback=policy.emergency_rollback,
        default=default,
    )


def policy_from_proto(message: pb.PromotionPolicy) -> Policy:
    """An empty `protected` means the default; required_approvals 0 means 1."""
    return Policy(
        protected=tuple(message.protected) or DEFAULT_PROTECTED,
        required_approvals=message.required_approvals or 1,
        separation_of_duties=message.separation_of_duties,
        checks=tuple(check_from_proto(c) for c in message.required_checks),
        emergency_rollback=message.emergency_rollback,
    )


def deployment_to_proto(deployment: Deployment) -> pb.Deployment:
    message = pb.Deployment(
        environment=deployment.environment,
        weights=[pb.TrafficWeight(version=w.version, percent=w.percent) for w in deployment.weights],
        runtime_config=deployment.config,
        config_schema=deployment.config_schema,
        revision=deployment.revision,
        restored_revision=deployment.restored,
    )
    if deployment.code:
        code = deployment.code
        message.serving_code.CopyFrom(
            pb.ServingCode(image=code.image, repository=code.repository, commit=code.commit)
        )
    return message


def deployment_from_proto(message: pb.Deployment) -> Deployment:
    code = message.serving_code
    return Deployment(
        message.environment,
        tuple(Weight(w.version, w.percent) for w in message.weights),
        ServingCode(code.image, code.repository, code.commit),
        message.runtime_config,
        message.config_schema,
        message.revision,
        message.restored_revision,
    )


_REPORT_STATE = {
    ReportState.IN_PROGRESS: pb.DeploymentReport.STATE_IN_PROGRESS,
    ReportState.SUCCEEDED: pb.DeploymentReport.STATE_SUCCEEDED,
    ReportState.FAILED: pb.DeploymentReport.STATE_FAILED,
}
REPORT_STATE_FROM_PROTO = {v: k for k, v in _REPORT_STATE.items()}


def report_to_proto(report: Report) -> pb.DeploymentReport:
    message = pb.DeploymentReport(
        model=report.model,
        environment=report.environment,
        revision=report.revision,
        version=report.version,
        state=_REPORT_STATE[report.state],
        detail=report.detail,
        reporter=report.reporter,
    )
    _ts(message.report_time, report.time)
    return message


def report_from_proto(message: pb.DeploymentReport) -> Report:
    return Report(
        message.model,
        message.environment,
        message.revision,
        message.version,
        REPORT_STATE_FROM_PROTO[message.state],
        message.detail,
        message.reporter,
        _dt(message.report_time) if message.HasField("report_time") else None,
    )


def approval_to_proto(approval: Approval) -> pb.Approval:
    message = pb.Approval(approver=approval.approver, comment=approval.comment)
    _ts(message.approve_time, approval.time)
    return message


def approval_from_proto(message: pb.Approval) -> Approval:
    return Approval(message.approver, message.comment, _dt(message.approve_time))


def denial_to_proto(denial: AccessDenied, at: datetime) -> pb.AccessDenial:
    message = pb.AccessDenial(
        principal=denial.principal, action=denial.action, resource=denial.resource, reason=denial.reason
    )
    message.deny_time.FromDatetime(at)
    return message


def request_to_proto(request: Request) -> pb.TransitionRequest:
    message = pb.TransitionRequest(
        name=request.name,
        moves=[pb.PointerMove(pointer=m.pointer, version=m.version) for m in request.moves],
        deployments=[deployment_to_proto(d) for d in request.deployments],
        comment=request.comment,
        rollback=request.rollback,
        rollback_reason=request.rollback_reason,
        emergency=request.emergency,
        state=_STATE[request.state],
        requester=request.requester,
        required_approvals=request.required_approvals,
        separation_of_duties=request.separation_of_duties,
        approvals=[approval_to_proto(a) for a in request.approvals],
        decided_by=request.decided_by,
        decision_comment=request.decision_comment,
        etag=request.etag,
        protected_targets=list(request.protected_targets),
    )
    _ts(message.create_time, request.create_time)
    _ts(message.update_time, request.update_time)
    return message


def request_from_proto(message: pb.TransitionRequest, checks: Sequence[pb.RequiredCheck]) -> Request:
    model = message.name.rsplit("/transitionRequests/", 1)[0]
    return Request(
        name=message.name,
        model=model,
        moves=tuple(Move(m.pointer, m.version) for m in message.moves),
        deployments=tuple(deployment_from_proto(d) for d in message.deployments),
        comment=message.comment,
        requester=message.requester,
        required_approvals=message.required_approvals,
        separation_of_duties=message.separation_of_duties,
        checks=tuple(check_from_proto(c) for c in checks),
        create_time=_dt(message.create_time),
        etag=message.etag,
        rollback=message.rollback,
        rollback_reason=message.rollback_reason,
        emergency=message.emergency,
        protected_targets=tuple(message.protected_targets),
        state=STATE_FROM_PROTO[message.state],
        approvals=tuple(approval_from_proto(a) for a in message.approvals),
        decided_by=message.decided_by,
        decision_comment=message.decision_comment,
        update_time=_dt(message.update_time) if message.HasField("update_time") else None,
    )


def history_entry_to_proto(entry: HistoryEntry) -> pb.PointerHistoryEntry:
    message = pb.PointerHistoryEntry(
        model=entry.model,
        transition_request=entry.transition_request,
        changes=[
            pb.PointerChange(pointer=c.pointer, version=c.version, previous=c.previous) for c in entry.changes
        ],
        deployments=[deployment_to_proto(d) for d in entry.deployments],
        requester=entry.requester,
        comment=entry.comment,
        applied_by=entry.applied_by,
        approvals=[approval_to_proto(a) for a in entry.approvals],
        rollback=entry.rollback,
        rollback_reason=entry.rollback_reason,
        etag=entry.etag,
    )
    message.apply_time.FromDatetime(entry.apply_time)
    return message


def history_entry_from_proto(message: pb.PointerHistoryEntry) -> HistoryEntry:
    return HistoryEntry(
        model=message.model,
        transition_request=message.transition_request,
        changes=tuple(PointerChange(c.pointer, c.version, c.previous) for c in message.changes),
        deployments=tuple(deployment_from_proto(d) for d in message.deployments),
        requester=message.requester,
        comment=message.comment,
        applied_by=message.applied_by,
        approvals=tuple(approval_from_proto(a) for a in message.approvals),
        rollback=message.rollback,
        rollback_reason=message.rollback_reason,
        apply_time=_dt(message.apply_time),
        etag=message.etag,
    )

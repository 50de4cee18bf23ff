"""Domain values and events <-> the protobuf messages of modelreg.promotion.v1.

The API mapping uses the same conversions, so the log and the API can never
disagree on what a field means.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf.message import Message

from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.gen.promotion.v1 import events_pb2, promotion_pb2
from modelreg.promotion.domain.model import (
    DEFAULT_PROTECTED,
    AccessDenied,
    Approval,
    Check,
    CheckKind,
    Deployment,
    Move,
    PointerChange,
    Policy,
    PolicySet,
    PromotionEvent,
    Request,
    RequestState,
    TransitionApplied,
    TransitionApproved,
    TransitionCancelled,
    TransitionRejected,
    TransitionRequested,
    Weight,
)

pb = promotion_pb2

_KIND = {
    CheckKind.VERSION_READY: pb.RequiredCheck.KIND_VERSION_READY,
    CheckKind.SIGNATURE_PRESENT: pb.RequiredCheck.KIND_SIGNATURE_PRESENT,
    CheckKind.LINEAGE_RECORDED: pb.RequiredCheck.KIND_LINEAGE_RECORDED,
    CheckKind.METRIC_THRESHOLD: pb.RequiredCheck.KIND_METRIC_THRESHOLD,
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


def _ts(message: object, value: datetime | None) -> None:
    if value is not None:
        message.FromDatetime(value)  # type: ignore[attr-defined]


def _dt(message: object) -> datetime:
    return message.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined]


def check_to_proto(check: Check) -> pb.RequiredCheck:
    return pb.RequiredCheck(
        kind=_KIND[check.kind],
        metric=check.metric,
        comparison=_COMPARISON.get(check.comparison, pb.RequiredCheck.COMPARISON_UNSPECIFIED),
        threshold=check.threshold,
    )


def check_from_proto(message: pb.RequiredCheck) -> Check:
    return Check(
        KIND_FROM_PROTO[message.kind],
        message.metric,
        COMPARISON_FROM_PROTO.get(message.comparison, ""),
        message.threshold,
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
    return pb.Deployment(
        environment=deployment.environment,
        weights=[pb.TrafficWeight(version=w.version, percent=w.percent) for w in deployment.weights],
    )


def deployment_from_proto(message: pb.Deployment) -> Deployment:
    return Deployment(message.environment, tuple(Weight(w.version, w.percent) for w in message.weights))


def approval_to_proto(approval: Approval) -> pb.Approval:
    message = pb.Approval(approver=approval.approver, comment=approval.comment)
    _ts(message.approve_time, approval.time)
    return message


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
        approvals=tuple(Approval(a.approver, a.comment, _dt(a.approve_time)) for a in message.approvals),
        decided_by=message.decided_by,
        decision_comment=message.decision_comment,
        update_time=_dt(message.update_time) if message.HasField("update_time") else None,
    )


def encode(event: PromotionEvent) -> tuple[str, Message]:
    """The envelope oneof field and payload for a domain event."""
    match event:
        case TransitionRequested(request=request):
            return "transition_requested", events_pb2.TransitionRequested(
                transition_request=request_to_proto(request),
                required_checks=[check_to_proto(c) for c in request.checks],
            )
        case TransitionApproved(name=name, approval=approval):
            return "transition_approved", events_pb2.TransitionApproved(
                name=name, approval=approval_to_proto(approval)
            )
        case TransitionRejected(name=name, comment=comment):
            return "transition_rejected", events_pb2.TransitionRejected(name=name, comment=comment)
        case TransitionCancelled(name=name, comment=comment):
            return "transition_cancelled", events_pb2.TransitionCancelled(name=name, comment=comment)
        case TransitionApplied():
            model = event.request.model
            return "transition_applied", events_pb2.TransitionApplied(
                transition_request=request_to_proto(event.request),
                moved=[
                    events_pb2.PointerMoved(
                        model=model, pointer=c.pointer, version=c.version, previous=c.previous
                    )
                    for c in event.changes
                    if c.version
                ],
                removed=[
                    events_pb2.PointerRemoved(model=model, pointer=c.pointer, previous=c.previous)
                    for c in event.changes
                    if not c.version
                ],
                archived=list(event.archived),
                unarchived=list(event.unarchived),
                deployments=[deployment_to_proto(d) for d in event.deployments],
                superseded=list(event.superseded),
                required_checks=[check_to_proto(c) for c in event.request.checks],
            )
        case PolicySet(parent=parent, policy=policy):
            return "promotion_policy_set", events_pb2.PromotionPolicySet(
                policy=policy_to_proto(parent, policy)
            )
        case AccessDenied():
            return "access_denied", events_pb2.AccessDenied(
                denial=pb.AccessDenial(
                    principal=event.principal,
                    action=event.action,
                    resource=event.resource,
                    reason=event.reason,
                )
            )
    raise TypeError(f"not a promotion event: {event!r}")


def decode(envelope: Envelope) -> PromotionEvent | None:
    """The domain event in an envelope; None for payloads this service does not fold."""
    match envelope.WhichOneof("payload"):
        case "transition_requested":
            m = envelope.transition_requested
            return TransitionRequested(request_from_proto(m.transition_request, m.required_checks))
        case "transition_approved":
            a = envelope.transition_approved.approval
            return TransitionApproved(
                envelope.transition_approved.name, Approval(a.approver, a.comment, _dt(a.approve_time))
            )
        case "transition_rejected":
            return TransitionRejected(envelope.transition_rejected.name, envelope.transition_rejected.comment)
        case "transition_cancelled":
            return TransitionCancelled(
                envelope.transition_cancelled.name, envelope.transition_cancelled.comment
            )
        case "transition_applied":
            m = envelope.transition_applied
            changes = [PointerChange(p.pointer, p.version, p.previous) for p in m.moved]
            changes += [PointerChange(p.pointer, 0, p.previous) for p in m.removed]
            return TransitionApplied(
                request_from_proto(m.transition_request, m.required_checks),
                tuple(sorted(changes, key=lambda c: c.pointer)),
                tuple(m.archived),
                tuple(m.unarchived),
                tuple(deployment_from_proto(d) for d in m.deployments),
                tuple(m.superseded),
            )
        case "promotion_policy_set":
            policy = envelope.promotion_policy_set.policy
            return PolicySet(policy.parent, policy_from_proto(policy))
        case "access_denied":
            d = envelope.access_denied.denial
            return AccessDenied(d.principal, d.action, d.resource, d.reason)
    return None

"""Domain events <-> the envelope payloads of modelreg.promotion.v1 (the resources they embed convert in
modelreg.promotion.resources)."""

from __future__ import annotations

from typing import assert_never

from google.protobuf.message import Message

from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.gen.promotion.v1 import events_pb2, promotion_pb2
from modelreg.promotion.domain.events import (
    AccessDenied,
    DeploymentReported,
    Event,
    PointerChange,
    PolicySet,
    TransitionApplied,
    TransitionApproved,
    TransitionCancelled,
    TransitionRejected,
    TransitionRequested,
)
from modelreg.promotion.domain.state import Request
from modelreg.promotion.resources import (
    approval_from_proto,
    approval_to_proto,
    check_to_proto,
    deployment_from_proto,
    deployment_to_proto,
    policy_from_proto,
    policy_to_proto,
    report_from_proto,
    report_to_proto,
    request_from_proto,
    request_to_proto,
)


def request_body(request: Request) -> events_pb2.TransitionRequested:
    """A request with the checks in force: what TransitionRequested carries, and the read model stores."""
    return events_pb2.TransitionRequested(
        transition_request=request_to_proto(request),
        required_checks=[check_to_proto(c) for c in request.checks],
    )


def request_from_body(message: events_pb2.TransitionRequested) -> Request:
    return request_from_proto(message.transition_request, message.required_checks)


def encode(event: Event) -> tuple[str, Message]:
    """The envelope oneof field and payload for a domain event."""
    match event:
        case TransitionRequested(request=request):
            return "transition_requested", request_body(request)
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
                denial=promotion_pb2.AccessDenial(
                    principal=event.principal,
                    action=event.action,
                    resource=event.resource,
                    reason=event.reason,
                )
            )
        case DeploymentReported(report=report):
            return "deployment_reported", events_pb2.DeploymentReported(report=report_to_proto(report))
        case _:
            assert_never(event)


def decode(envelope: Envelope) -> Event | None:
    """The domain event in an envelope; None for payloads this service does not fold."""
    match envelope.WhichOneof("payload"):
        case "transition_requested":
            return TransitionRequested(request_from_body(envelope.transition_requested))
        case "transition_approved":
            approved = envelope.transition_approved
            return TransitionApproved(approved.name, approval_from_proto(approved.approval))
        case "transition_rejected":
            return TransitionRejected(envelope.transition_rejected.name, envelope.transition_rejected.comment)
        case "transition_cancelled":
            return TransitionCancelled(
                envelope.transition_cancelled.name, envelope.transition_cancelled.comment
            )
        case "transition_applied":
            applied = envelope.transition_applied
            changes = [PointerChange(p.pointer, p.version, p.previous) for p in applied.moved]
            changes += [PointerChange(p.pointer, 0, p.previous) for p in applied.removed]
            return TransitionApplied(
                request_from_proto(applied.transition_request, applied.required_checks),
                tuple(sorted(changes, key=lambda c: c.pointer)),
                tuple(applied.archived),
                tuple(applied.unarchived),
                tuple(deployment_from_proto(d) for d in applied.deployments),
                tuple(applied.superseded),
            )
        case "promotion_policy_set":
            policy = envelope.promotion_policy_set.policy
            return PolicySet(policy.parent, policy_from_proto(policy))
        case "access_denied":
            d = envelope.access_denied.denial
            return AccessDenied(d.principal, d.action, d.resource, d.reason)
        case "deployment_reported":
            return DeploymentReported(report_from_proto(envelope.deployment_reported.report))
    return None

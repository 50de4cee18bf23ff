"""The promotion fold: an event, with its envelope's metadata, onto the model's aggregate."""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from modelreg.eventmeta import EventMeta
from modelreg.promotion.domain.events import (
    AccessDenied,
    DeploymentReported,
    Event,
    PolicySet,
    TransitionApplied,
    TransitionApproved,
    TransitionCancelled,
    TransitionRejected,
    TransitionRequested,
)
from modelreg.promotion.domain.queries import Plan, after_plan
from modelreg.promotion.domain.state import Aggregate, Pointers
from modelreg.promotion.domain.values import RequestState


def evolve(state: Aggregate, event: Event, meta: EventMeta) -> Aggregate:
    """The aggregate after `event`. A policy and a denial are facts of their parent, and a deployment
    report a fact about the world outside, not of the aggregate: they leave it as it is."""
    requests = dict(state.requests)
    match event:
        case TransitionRequested(request=request):
            requests[request.name] = replace(
                request, create_time=meta.occurred_at, update_time=meta.occurred_at
            )
            return replace(state, requests=requests)
        case TransitionApproved(name=name, approval=approval):
            if name in requests:
                r = requests[name]
                requests[name] = replace(r, approvals=(*r.approvals, approval), update_time=meta.occurred_at)
            return replace(state, requests=requests)
        case TransitionRejected(name=name, comment=comment) | TransitionCancelled(name=name, comment=comment):
            kind = RequestState.REJECTED if isinstance(event, TransitionRejected) else RequestState.CANCELLED
            if name in requests:
                requests[name] = replace(
                    requests[name],
                    state=kind,
                    decided_by=meta.actor,
                    decision_comment=comment,
                    update_time=meta.occurred_at,
                )
            return replace(state, requests=requests)
        case TransitionApplied():
            previous = requests.get(event.request.name)
            create_time = previous.create_time if previous else meta.occurred_at
            requests[event.request.name] = replace(
                event.request, create_time=create_time, update_time=meta.occurred_at
            )
            for name in event.superseded:
                if name in requests:
                    requests[name] = replace(
                        requests[name], state=RequestState.SUPERSEDED, update_time=meta.occurred_at
                    )
            return replace(state, pointers=_apply_changes(state.pointers, event), requests=requests)
        case PolicySet() | AccessDenied() | DeploymentReported():
            return state
        case _:
            assert_never(event)


def _apply_changes(pointers: Pointers, event: TransitionApplied) -> Pointers:
    return after_plan(pointers, Plan(event.changes, event.archived, event.unarchived, event.deployments))

"""Webhook protos <-> the use cases' values."""

from __future__ import annotations

from collections.abc import Sequence

from modelreg.errors import InvalidArgument
from modelreg.events.application.use_cases import Given
from modelreg.events.domain.webhooks import DeliveryRecord, State
from modelreg.gen.relay.v1 import webhooks_pb2 as pb

_STATES = {
    pb.Webhook.STATE_UNSPECIFIED: State.ACTIVE,  # a new subscription is active unless told otherwise
    pb.Webhook.STATE_ACTIVE: State.ACTIVE,
    pb.Webhook.STATE_DISABLED: State.DISABLED,
}


def given_of(message: pb.Webhook, paths: Sequence[str] | None = None, field: str = "webhook") -> Given:
    """The fields of a create (`paths` None) or of an update (only those `paths` names are read)."""
    state = _STATES.get(message.state)
    if state is None:
        if paths is not None and "state" not in paths:
            state = State.ACTIVE  # not read by the update
        else:  # a number no State names (a newer or a broken client): never taken as ACTIVE
            raise InvalidArgument.of(f"{field}.state", f"{message.state} is not a state: ACTIVE or DISABLED")
    return Given(
        url=message.url,
        event_types=tuple(message.event_types),
        model=message.model,
        secret=message.secret,
        mlflow_headers=message.mlflow_headers,
        state=state,
        annotations=dict(message.annotations),
    )


def delivery_out(record: DeliveryRecord) -> pb.WebhookDelivery:
    out = pb.WebhookDelivery(
        webhook=record.webhook,
        event_id=record.event_id,
        event_type=record.event_type,
        position=record.position,
        attempt=record.attempt,
        status_code=record.status_code,
        latency_ms=record.latency_ms,
        error=record.error,
        outcome=record.outcome,
    )
    out.attempt_time.FromDatetime(record.attempt_time)
    return out

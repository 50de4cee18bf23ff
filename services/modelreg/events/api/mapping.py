"""Webhook protos <-> the use cases' values."""

from __future__ import annotations

from modelreg.events.application.use_cases import Given
from modelreg.events.domain.webhooks import DeliveryRecord, State
from modelreg.gen.relay.v1 import webhooks_pb2 as pb


def given_of(message: pb.Webhook) -> Given:
    return Given(
        url=message.url,
        event_types=tuple(message.event_types),
        model=message.model,
        secret=message.secret,
        mlflow_headers=message.mlflow_headers,
        state=State.DISABLED if message.state == pb.Webhook.STATE_DISABLED else State.ACTIVE,
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

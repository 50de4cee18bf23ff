"""Proto <-> domain for the Webhook message, which the API and the relay's events both carry."""

from __future__ import annotations

from modelreg.events.domain.webhooks import State, Webhook
from modelreg.gen.relay.v1 import webhooks_pb2 as pb

STATES = {State.ACTIVE: pb.Webhook.STATE_ACTIVE, State.DISABLED: pb.Webhook.STATE_DISABLED}


def webhook_to_proto(webhook: Webhook, *, cursor: int = 0) -> pb.Webhook:
    """Never with the secret: `has_secret` says whether there is one."""
    out = pb.Webhook(
        name=webhook.name,
        url=webhook.url,
        event_types=list(webhook.event_types),
        model=webhook.model,
        mlflow_headers=webhook.mlflow_headers,
        state=STATES[webhook.state],
        disabled_reason=webhook.disabled_reason,
        has_secret=bool(webhook.sealed_secrets),
        cursor=cursor,
        annotations=dict(webhook.annotations),
    )
    if webhook.create_time is not None:
        out.create_time.FromDatetime(webhook.create_time)
    if webhook.update_time is not None:
        out.update_time.FromDatetime(webhook.update_time)
    return out


def webhook_from_proto(message: pb.Webhook) -> Webhook:
    """The fields an event carries (no secret, no times: the fold sets those)."""
    return Webhook(
        name=message.name,
        url=message.url,
        event_types=tuple(message.event_types),
        model=message.model,
        mlflow_headers=message.mlflow_headers,
        state=State.DISABLED if message.state == pb.Webhook.STATE_DISABLED else State.ACTIVE,
        disabled_reason=message.disabled_reason,
        annotations=tuple(sorted(message.annotations.items())),
    )

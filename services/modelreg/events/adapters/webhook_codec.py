"""Webhook events between the domain and their envelope payloads."""

from __future__ import annotations

from typing import assert_never

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from modelreg.events.domain.webhooks import (
    Event,
    WebhookCreated,
    WebhookDeleted,
    WebhookDisabled,
    WebhookUpdated,
)
from modelreg.events.resources import webhook_from_proto, webhook_to_proto
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.gen.relay.v1 import events_pb2


def encode(event: Event) -> tuple[str, Message]:
    match event:
        case WebhookCreated():
            return "webhook_created", events_pb2.WebhookCreated(
                webhook=webhook_to_proto(event.webhook), sealed_secret=event.sealed_secret
            )
        case WebhookUpdated():
            return "webhook_updated", events_pb2.WebhookUpdated(
                webhook=webhook_to_proto(event.webhook),
                update_mask=FieldMask(paths=list(event.mask)),
                sealed_secret=event.sealed_secret,
            )
        case WebhookDeleted():
            return "webhook_deleted", events_pb2.WebhookDeleted(name=event.name)
        case WebhookDisabled():
            return "webhook_disabled", events_pb2.WebhookDisabled(name=event.name, reason=event.reason)
        case _:
            assert_never(event)


def decode(envelope: Envelope) -> Event | None:
    field = envelope.WhichOneof("payload")
    if field == "webhook_created":
        m = envelope.webhook_created
        return WebhookCreated(webhook_from_proto(m.webhook), m.sealed_secret)
    if field == "webhook_updated":
        u = envelope.webhook_updated
        return WebhookUpdated(webhook_from_proto(u.webhook), tuple(u.update_mask.paths), u.sealed_secret)
    if field == "webhook_deleted":
        return WebhookDeleted(envelope.webhook_deleted.name)
    if field == "webhook_disabled":
        return WebhookDisabled(envelope.webhook_disabled.name, envelope.webhook_disabled.reason)
    return None

"""The webhooks sub-client (served by the events relay): subscriptions that receive a
namespace's public events, signed the Standard Webhooks way."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from google.protobuf.field_mask_pb2 import FieldMask

from modelreg.client.blocking import Blocking, Facade
from modelreg.client.connection import Connection
from modelreg.gen.relay.v1 import webhooks_pb2 as pb


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def webhook_name(name: str) -> str:
    """`ns/id` or the full `namespaces/ns/webhooks/id`."""
    if name.startswith("namespaces/"):
        return name
    namespace, _, webhook_id = name.partition("/")
    return f"namespaces/{namespace}/webhooks/{webhook_id}"


class WebhooksClient:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def create(
        self,
        name: str,
        url: str,
        *,
        secret: str,
        event_types: Sequence[str] = (),
        model: str = "",
        mlflow_headers: bool = False,
        annotations: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> pb.Webhook:
        """Subscribes `url` to the events of the namespace of `name` (`ns/id`); `model` (`ns/m`)
        narrows it to one model, `event_types` (e.g. `version.ready`) to some types."""
        full = webhook_name(name)
        _, namespace, _, webhook_id = full.split("/")
        c = self._connection
        return await c.call(
            c.webhooks.CreateWebhook,
            pb.CreateWebhookRequest(
                parent=f"namespaces/{namespace}",
                webhook_id=webhook_id,
                webhook=pb.Webhook(
                    url=url,
                    secret=secret,
                    event_types=list(event_types),
                    model=_model_name(model),
                    mlflow_headers=mlflow_headers,
                    annotations=dict(annotations or {}),
                ),
                request_id=request_id or str(uuid.uuid4()),
            ),
        )

    async def get(self, name: str) -> pb.Webhook:
        c = self._connection
        return await c.call(c.webhooks.GetWebhook, pb.GetWebhookRequest(name=webhook_name(name)))

    async def list_webhooks(self, namespace: str) -> list[pb.Webhook]:
        c = self._connection
        parent = namespace if namespace.startswith("namespaces/") else f"namespaces/{namespace}"
        response = await c.call(c.webhooks.ListWebhooks, pb.ListWebhooksRequest(parent=parent))
        return list(response.webhooks)

    async def update(
        self,
        name: str,
        *,
        url: str | None = None,
        secret: str | None = None,
        event_types: Sequence[str] | None = None,
        model: str | None = None,
        mlflow_headers: bool | None = None,
        active: bool | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> pb.Webhook:
        """Changes only what is given; a new `secret` rotates (both sign for a while);
        `annotations` replace the old ones as a whole."""
        webhook = pb.Webhook(name=webhook_name(name))
        paths = []
        if url is not None:
            webhook.url = url
            paths.append("url")
        if secret is not None:
            webhook.secret = secret
            paths.append("secret")
        if event_types is not None:
            webhook.event_types[:] = list(event_types)
            paths.append("event_types")
        if model is not None:
            webhook.model = _model_name(model)
            paths.append("model")
        if mlflow_headers is not None:
            webhook.mlflow_headers = mlflow_headers
            paths.append("mlflow_headers")
        if active is not None:
            webhook.state = pb.Webhook.STATE_ACTIVE if active else pb.Webhook.STATE_DISABLED
            paths.append("state")
        if annotations is not None:
            webhook.annotations.update(annotations)
            paths.append("annotations")
        c = self._connection
        return await c.call(
            c.webhooks.UpdateWebhook,
            pb.UpdateWebhookRequest(
                webhook=webhook, update_mask=FieldMask(paths=paths), request_id=str(uuid.uuid4())
            ),
        )

    async def delete(self, name: str) -> pb.Webhook:
        c = self._connection
        return await c.call(
            c.webhooks.DeleteWebhook,
            pb.DeleteWebhookRequest(name=webhook_name(name), request_id=str(uuid.uuid4())),
        )

    async def test(self, name: str) -> pb.WebhookDelivery:
        c = self._connection
        return await c.call(c.webhooks.TestWebhook, pb.TestWebhookRequest(name=webhook_name(name)))

    async def deliveries(
        self, name: str, *, dead_letters_only: bool = False, limit: int = 100
    ) -> list[pb.WebhookDelivery]:
        c = self._connection
        response = await c.call(
            c.webhooks.ListWebhookDeliveries,
            pb.ListWebhookDeliveriesRequest(
                name=webhook_name(name), dead_letters_only=dead_letters_only, page_size=limit
            ),
        )
        return list(response.deliveries)

    async def redeliver(
        self, name: str, *, from_position: int | None = None, from_time: datetime | None = None
    ) -> pb.Webhook:
        """Delivers again from a position (a delivery's `position`) or a time."""
        request = pb.RedeliverWebhookRequest(name=webhook_name(name))
        if from_time is not None:
            request.from_time.FromDatetime(from_time)
        elif from_position is not None:
            request.from_position = from_position
        c = self._connection
        return (await c.call(c.webhooks.RedeliverWebhook, request)).webhook


def _model_name(model: str) -> str:
    if not model or model.startswith("namespaces/"):
        return model
    namespace, _, model_id = model.partition("/")
    return f"namespaces/{namespace}/models/{model_id}"


class SyncWebhooksClient(Facade[WebhooksClient]):
    create = Blocking(WebhooksClient.create)
    get = Blocking(WebhooksClient.get)
    list_webhooks = Blocking(WebhooksClient.list_webhooks)
    update = Blocking(WebhooksClient.update)
    delete = Blocking(WebhooksClient.delete)
    test = Blocking(WebhooksClient.test)
    deliveries = Blocking(WebhooksClient.deliveries)
    redeliver = Blocking(WebhooksClient.redeliver)

"""The webhook gRPC servicer: map the request, call the use case, map the result back."""

from __future__ import annotations

from datetime import UTC

from modelreg.events.api.mapping import delivery_out, given_of
from modelreg.events.application.use_cases import Webhooks, Written
from modelreg.events.resources import webhook_to_proto
from modelreg.gen.relay.v1 import webhooks_pb2 as pb
from modelreg.gen.relay.v1 import webhooks_pb2_grpc
from modelreg.grpcutil.context import ServicerContext as Context
from modelreg.grpcutil.context import request_context
from modelreg.grpcutil.interceptor import set_token


class WebhookServicer(webhooks_pb2_grpc.WebhookServiceServicer):
    def __init__(self, webhooks: Webhooks) -> None:
        self._webhooks = webhooks

    def _answer(self, written: Written, context: Context) -> pb.Webhook:
        set_token(context, written.token)
        return webhook_to_proto(written.webhook, cursor=written.cursor)

    async def CreateWebhook(self, request: pb.CreateWebhookRequest, context: Context) -> pb.Webhook:  # noqa: N802
        events = request_context().event_context()
        written = await self._webhooks.create(
            request.parent, request.webhook_id, given_of(request.webhook), events
        )
        return self._answer(written, context)

    async def GetWebhook(self, request: pb.GetWebhookRequest, context: Context) -> pb.Webhook:  # noqa: N802
        webhook = await self._webhooks.get(request.name)
        return webhook_to_proto(webhook, cursor=await self._webhooks.cursor(request.name))

    async def ListWebhooks(  # noqa: N802
        self, request: pb.ListWebhooksRequest, context: Context
    ) -> pb.ListWebhooksResponse:
        hooks = await self._webhooks.list(request.parent)
        return pb.ListWebhooksResponse(
            webhooks=[webhook_to_proto(w, cursor=await self._webhooks.cursor(w.name)) for w in hooks]
        )

    async def UpdateWebhook(self, request: pb.UpdateWebhookRequest, context: Context) -> pb.Webhook:  # noqa: N802
        events = request_context().event_context()
        paths = list(request.update_mask.paths)
        written = await self._webhooks.update(
            request.webhook.name, given_of(request.webhook, paths), paths, events
        )
        return self._answer(written, context)

    async def DeleteWebhook(self, request: pb.DeleteWebhookRequest, context: Context) -> pb.Webhook:  # noqa: N802
        events = request_context().event_context()
        return self._answer(await self._webhooks.delete(request.name, events), context)

    async def TestWebhook(  # noqa: N802
        self, request: pb.TestWebhookRequest, context: Context
    ) -> pb.WebhookDelivery:
        return delivery_out(await self._webhooks.test(request.name))

    async def ListWebhookDeliveries(  # noqa: N802
        self, request: pb.ListWebhookDeliveriesRequest, context: Context
    ) -> pb.ListWebhookDeliveriesResponse:
        records = await self._webhooks.deliveries(
            request.name, dead_only=request.dead_letters_only, page_size=request.page_size
        )
        return pb.ListWebhookDeliveriesResponse(deliveries=[delivery_out(r) for r in records])

    async def RedeliverWebhook(  # noqa: N802
        self, request: pb.RedeliverWebhookRequest, context: Context
    ) -> pb.RedeliverWebhookResponse:
        which = request.WhichOneof("from")
        cursor = await self._webhooks.redeliver(
            request.name,
            from_position=request.from_position if which == "from_position" else None,
            from_time=request.from_time.ToDatetime(tzinfo=UTC) if which == "from_time" else None,
        )
        webhook = await self._webhooks.get(request.name)
        return pb.RedeliverWebhookResponse(webhook=webhook_to_proto(webhook, cursor=cursor))

"""The events relay process.

python -m modelreg.events serve [--port 50056] [--no-projector]
python -m modelreg.events project

It folds every internal topic into an outbox (in the transaction of each fold's
checkpoint) and, while serving, publishes the outbox to `modelreg.public.v1` as
CloudEvents 1.0 (Kafka binding, binary mode, JSON data) and delivers it to webhooks.

MODELREG_WEBHOOK_ALLOW_HOSTS (hosts, IPs or CIDRs a webhook may point to although they
are private, loopback or link-local), MODELREG_WEBHOOK_MAX_ATTEMPTS (8),
MODELREG_WEBHOOK_BACKOFF_S (1), MODELREG_WEBHOOK_BACKOFF_CAP_S (300),
MODELREG_WEBHOOK_TIMEOUT_S (10), MODELREG_WEBHOOK_ROTATION_S (86400) and
MODELREG_WEBHOOK_SECRET_KEY configure the webhooks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from modelreg.access.log import with_grants
from modelreg.commands.logged import LoggedCommands
from modelreg.eventlog import EventContext
from modelreg.events.adapters import webhook_codec
from modelreg.events.adapters.dispatcher import Sender, WebhookDispatcher, send_test
from modelreg.events.adapters.guard import ResolvingGuard
from modelreg.events.adapters.projection import OutboxProjection
from modelreg.events.adapters.publisher import OutboxPublisher
from modelreg.events.adapters.secrets import LazySecretBox, SecretBox
from modelreg.events.adapters.webhook_store import PostgresWebhooks, WebhookProjection
from modelreg.events.api.servicer import WebhookServicer
from modelreg.events.application.use_cases import Webhooks
from modelreg.events.domain.webhooks import DeliveryRecord, RetryPolicy, Webhook
from modelreg.gen.relay.v1 import webhooks_pb2, webhooks_pb2_grpc
from modelreg.runtime.host import Runtime, ServiceSpec
from modelreg.runtime.process import run_service

TOPIC = "modelreg.events.v1"
"""The relay's own topic: webhook subscriptions (commands) and the denials it records."""
PUBLIC_TOPIC = "modelreg.public.v1"
RELAYED_TOPICS = (
    "modelreg.catalog.v1",
    "modelreg.versioning.v1",
    "modelreg.lineage.v1",
    "modelreg.promotion.v1",
)
"""Every internal topic whose accepted events become public ones."""
SCHEMA = "events"
SERVICE_NAME = webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name
RELAY_ACTOR = "system:events-relay"


def retry_policy(environ: Mapping[str, str] = os.environ) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=int(environ.get("MODELREG_WEBHOOK_MAX_ATTEMPTS", "8")),
        base_s=float(environ.get("MODELREG_WEBHOOK_BACKOFF_S", "1")),
        cap_s=float(environ.get("MODELREG_WEBHOOK_BACKOFF_CAP_S", "300")),
    )


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    policy: RetryPolicy
    guard: ResolvingGuard
    timeout_s: float
    rotation_s: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WebhookSettings:
        return cls(
            retry_policy(environ),
            ResolvingGuard.from_env(environ),
            float(environ.get("MODELREG_WEBHOOK_TIMEOUT_S", "10")),
            float(environ.get("MODELREG_WEBHOOK_ROTATION_S", "86400")),
        )

    def sender(self, box: SecretBox) -> Sender:
        return Sender(box, self.guard, timeout_s=self.timeout_s, rotation_s=self.rotation_s)


class _Tester:
    def __init__(self, store: PostgresWebhooks, box: LazySecretBox, settings: WebhookSettings) -> None:
        self._store, self._box, self._settings = store, box, settings

    async def test(self, webhook: Webhook) -> DeliveryRecord:
        sender = self._settings.sender(await self._box.box())
        try:
            return await send_test(self._store, sender, webhook)
        finally:
            await sender.close()


def _use_cases(
    runtime: Runtime, settings: WebhookSettings
) -> tuple[Webhooks, PostgresWebhooks, LazySecretBox]:
    store = PostgresWebhooks(runtime.pool, runtime.schema)
    box = LazySecretBox(runtime.pool, runtime.schema)
    commands = LoggedCommands(runtime.executor, load=store.load, encode=webhook_codec.encode)
    webhooks = Webhooks(store, commands, box, settings.guard, _Tester(store, box, settings))
    return webhooks, store, box


def spec(
    schema: str = SCHEMA, topics: Sequence[str] = RELAYED_TOPICS, *, webhooks: WebhookSettings | None = None
) -> ServiceSpec:
    """`webhooks` defaults to the environment (read now)."""
    settings = webhooks or WebhookSettings.from_env()

    def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
        use_cases, *_ = _use_cases(runtime, settings)
        webhooks_pb2_grpc.add_WebhookServiceServicer_to_server(WebhookServicer(use_cases), server)
        return [SERVICE_NAME]

    async def background(runtime: Runtime) -> None:
        """The publisher and the webhook dispatcher (each one per schema at a time)."""
        kafka = runtime.settings.kafka
        use_cases, store, box = _use_cases(runtime, settings)
        publisher = OutboxPublisher(runtime.settings.pg_dsn, runtime.schema, kafka, kafka.topic(PUBLIC_TOPIC))
        sender = settings.sender(await box.box())

        async def disable(name: str, reason: str, event_id: str) -> None:
            context = EventContext(actor=RELAY_ACTOR, request_id=f"gone:{event_id}")
            await use_cases.disable(name, reason, context)

        dispatcher = WebhookDispatcher(
            runtime.settings.pg_dsn, runtime.schema, store, sender, disable, policy=settings.policy
        )
        try:
            await asyncio.gather(publisher.run(), dispatcher.run())
        finally:
            await sender.close()

    return ServiceSpec(
        name="events",
        schema=schema,
        own_topic=TOPIC,
        projections=with_grants(
            [(TOPIC, WebhookProjection()), *[(topic, OutboxProjection(topic)) for topic in topics]]
        ),
        register=register,
        extra_topics=(PUBLIC_TOPIC,),
        background=background,
    )


def main(argv: Sequence[str] | None = None) -> None:
    run_service(name="events", spec=spec, default_schema=SCHEMA, default_port=50056, argv=argv)


if __name__ == "__main__":
    main()

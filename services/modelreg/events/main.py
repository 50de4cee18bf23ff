"""The events relay process.

python -m modelreg.events serve [--port 50056] [--no-projector]
python -m modelreg.events project

It folds every internal topic into an outbox (in the transaction of each fold's
checkpoint) and, while serving, publishes the outbox to `modelreg.public.v1` as
CloudEvents 1.0 (Kafka binding, binary mode, JSON data).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from modelreg.access.log import with_grants
from modelreg.events.adapters.projection import OutboxProjection
from modelreg.events.adapters.publisher import OutboxPublisher
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


def spec(schema: str = SCHEMA, topics: Sequence[str] = RELAYED_TOPICS) -> ServiceSpec:
    def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
        return []

    async def publish(runtime: Runtime) -> None:
        kafka = runtime.settings.kafka
        await OutboxPublisher(runtime.settings.pg_dsn, runtime.schema, kafka, kafka.topic(PUBLIC_TOPIC)).run()

    return ServiceSpec(
        name="events",
        schema=schema,
        own_topic=TOPIC,
        projections=with_grants([(topic, OutboxProjection(topic)) for topic in topics]),
        register=register,
        extra_topics=(PUBLIC_TOPIC,),
        background=publish,
    )


def main(argv: Sequence[str] | None = None) -> None:
    run_service(name="events", spec=spec, default_schema=SCHEMA, default_port=50056, argv=argv)


if __name__ == "__main__":
    main()

"""The promotion service process.

python -m modelreg.promotion serve [--port 50054] [--no-projector]
python -m modelreg.promotion project

Projections: its own topic, plus reference caches of versioning (version
status, metrics, signature presence) and lineage (which versions have lineage),
used only to validate transitions.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from modelreg.access import Denial, Role
from modelreg.access.log import with_grants
from modelreg.commands.logged import LoggedCommands
from modelreg.gen.promotion.v1 import promotion_pb2, promotion_pb2_grpc
from modelreg.grpcutil.context import request_context
from modelreg.promotion.adapters import codec
from modelreg.promotion.adapters.caches import LineageCache, VersionFactsCache
from modelreg.promotion.adapters.projection import PromotionProjection
from modelreg.promotion.adapters.reader import PostgresPromotionReader
from modelreg.promotion.api.servicer import PromotionServicer
from modelreg.promotion.application.use_cases import Promotion
from modelreg.runtime.host import Runtime, ServiceSpec
from modelreg.runtime.process import run_service

TOPIC = "modelreg.promotion.v1"
VERSIONING_TOPIC = "modelreg.versioning.v1"
LINEAGE_TOPIC = "modelreg.lineage.v1"
SCHEMA = "promotion"
SERVICE_NAME = promotion_pb2.DESCRIPTOR.services_by_name["PromotionService"].full_name


def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
    reader = PostgresPromotionReader(runtime.pool, runtime.schema)
    promotion = Promotion(
        reader=reader,
        facts=reader,
        commands=LoggedCommands(
            runtime.executor, load=reader.load, load_head=reader.load_head, encode=codec.encode
        ),
        is_admin=lambda actor, namespace: runtime.access.allows(
            actor, request_context().groups, namespace, Role.ADMIN
        ),
        progress=runtime.progress,
        topic=runtime.settings.kafka.topic(TOPIC),
        partitions=runtime.settings.partitions,
    )

    async def record_denial(denial: Denial) -> None:
        await promotion.record_denial(denial, request_context().event_context())

    runtime.access.on_denied(record_denial)
    promotion_pb2_grpc.add_PromotionServiceServicer_to_server(PromotionServicer(promotion), server)
    return [SERVICE_NAME]


def spec(schema: str = SCHEMA) -> ServiceSpec:
    return ServiceSpec(
        name="promotion",
        schema=schema,
        own_topic=TOPIC,
        projections=with_grants(
            [
                (TOPIC, PromotionProjection()),
                (VERSIONING_TOPIC, VersionFactsCache()),
                (LINEAGE_TOPIC, LineageCache()),
            ]
        ),
        register=register,
    )


def main(argv: Sequence[str] | None = None) -> None:
    run_service(name="promotion", spec=spec, default_schema=SCHEMA, default_port=50054, argv=argv)


if __name__ == "__main__":
    main()

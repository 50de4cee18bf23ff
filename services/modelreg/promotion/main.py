"""The promotion service process.

python -m modelreg.promotion serve [--port 50054] [--no-projector]
python -m modelreg.promotion project

Projections: its own topic, plus reference caches of versioning (version
status, metrics, signature presence) and lineage (which versions have lineage),
used only to validate transitions.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

import grpc

from modelreg.gen.promotion.v1 import promotion_pb2, promotion_pb2_grpc
from modelreg.observability.logging import configure_logging
from modelreg.promotion.adapters.commands import LoggedPromotionCommands
from modelreg.promotion.adapters.postgres import (
    LineageCache,
    PostgresPromotionReader,
    PromotionProjection,
    VersionFactsCache,
)
from modelreg.promotion.api.servicer import PromotionServicer
from modelreg.promotion.application.rbac import RoleMap
from modelreg.promotion.application.use_cases import Promotion
from modelreg.runtime.host import Runtime, ServiceHost, ServiceSpec
from modelreg.runtime.settings import Settings

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
        commands=LoggedPromotionCommands(runtime.executor, reader),
        roles=RoleMap.from_env(),
        progress=runtime.progress,
        topic=runtime.settings.kafka.topic(TOPIC),
        partitions=runtime.settings.partitions,
    )
    promotion_pb2_grpc.add_PromotionServiceServicer_to_server(PromotionServicer(promotion), server)
    return [SERVICE_NAME]


def spec(schema: str = SCHEMA) -> ServiceSpec:
    return ServiceSpec(
        name="promotion",
        schema=schema,
        own_topic=TOPIC,
        projections=[
            (TOPIC, PromotionProjection()),
            (VERSIONING_TOPIC, VersionFactsCache()),
            (LINEAGE_TOPIC, LineageCache()),
        ],
        register=register,
    )


async def run(args: argparse.Namespace) -> None:
    host = ServiceHost(spec(args.schema), Settings.from_env())
    project = args.command == "project" or not args.no_projector
    serve = args.command == "serve"
    await host.start(serve=serve, project=project, port=args.port, host=args.host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await host.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="modelreg-promotion", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["serve", "project"], nargs="?", default="serve")
    parser.add_argument("--port", type=int, default=50054)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--schema", default=SCHEMA)
    parser.add_argument("--no-projector", action="store_true", help="serve the API only")
    args = parser.parse_args(argv)
    configure_logging("promotion")
    try:
        import uvloop
    except ImportError:  # not on Windows
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()

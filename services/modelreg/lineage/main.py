"""The lineage service process.

python -m modelreg.lineage serve [--port 50053] [--no-projector]
python -m modelreg.lineage project
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

import grpc

from modelreg.gen.lineage.v1 import lineage_pb2, lineage_pb2_grpc
from modelreg.lineage.adapters.commands import LoggedLineageCommands
from modelreg.lineage.adapters.postgres import (
    LineageProjection,
    PointerCache,
    PostgresLineageReader,
    PostgresStageDirectory,
    PostgresVersionDirectory,
    VersionCache,
)
from modelreg.lineage.api.servicer import LineageServicer
from modelreg.lineage.application.use_cases import Lineage
from modelreg.observability.logging import configure_logging
from modelreg.runtime.host import Runtime, ServiceHost, ServiceSpec
from modelreg.runtime.settings import Settings

TOPIC = "modelreg.lineage.v1"
VERSIONING_TOPIC = "modelreg.versioning.v1"
PROMOTION_TOPIC = "modelreg.promotion.v1"
SCHEMA = "lineage"
SERVICE_NAME = lineage_pb2.DESCRIPTOR.services_by_name["LineageService"].full_name


def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
    reader = PostgresLineageReader(runtime.pool, runtime.schema)
    lineage = Lineage(
        reader,
        LoggedLineageCommands(runtime.executor, reader),
        PostgresVersionDirectory(runtime.pool, runtime.schema),
        PostgresStageDirectory(runtime.pool, runtime.schema),
    )
    lineage_pb2_grpc.add_LineageServiceServicer_to_server(LineageServicer(lineage), server)
    return [SERVICE_NAME]


def spec(schema: str = SCHEMA) -> ServiceSpec:
    # The own fold plus two reference caches, used only to validate and filter:
    # versions that exist (versioning) and where stages point (promotion). The
    # interceptor waits on consistency tokens for all three topics.
    return ServiceSpec(
        name="lineage",
        schema=schema,
        own_topic=TOPIC,
        projections=[
            (TOPIC, LineageProjection()),
            (VERSIONING_TOPIC, VersionCache()),
            (PROMOTION_TOPIC, PointerCache()),
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
    parser = argparse.ArgumentParser(prog="modelreg-lineage", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["serve", "project"], nargs="?", default="serve")
    parser.add_argument("--port", type=int, default=50053)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--schema", default=SCHEMA)
    parser.add_argument("--no-projector", action="store_true", help="serve the API only")
    args = parser.parse_args(argv)
    configure_logging("lineage")
    try:
        import uvloop
    except ImportError:  # not on Windows
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()

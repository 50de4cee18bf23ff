"""The catalog service process.

python -m modelreg.catalog serve [--port 50051] [--no-projector]
python -m modelreg.catalog project
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

import grpc

from modelreg.catalog.adapters.commands import LoggedCatalogCommands
from modelreg.catalog.adapters.postgres import CatalogProjection, PostgresCatalogReader
from modelreg.catalog.api.servicer import CatalogServicer
from modelreg.catalog.application.use_cases import Catalog
from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from modelreg.observability.logging import configure_logging
from modelreg.runtime.host import Runtime, ServiceHost, ServiceSpec
from modelreg.runtime.settings import Settings

TOPIC = "modelreg.catalog.v1"
SCHEMA = "catalog"
SERVICE_NAME = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name


def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
    reader = PostgresCatalogReader(runtime.pool, runtime.schema)
    catalog = Catalog(reader, LoggedCatalogCommands(runtime.executor, reader))
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(catalog), server)
    return [SERVICE_NAME]


def spec(schema: str = SCHEMA) -> ServiceSpec:
    return ServiceSpec(
        name="catalog",
        schema=schema,
        own_topic=TOPIC,
        projections=[(TOPIC, CatalogProjection())],
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
    parser = argparse.ArgumentParser(prog="modelreg-catalog", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["serve", "project"], nargs="?", default="serve")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--schema", default=SCHEMA)
    parser.add_argument("--no-projector", action="store_true", help="serve the API only")
    args = parser.parse_args(argv)
    configure_logging("catalog")
    try:
        import uvloop
    except ImportError:  # not on Windows
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()

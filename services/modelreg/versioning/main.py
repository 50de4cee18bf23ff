"""The versioning service process.

python -m modelreg.versioning serve [--port 50052] [--no-projector]
python -m modelreg.versioning project

Artifacts go to MODELREG_ARTIFACTS: `file:///abs/path` (default:
$MODELREG_HOME/artifacts, MODELREG_HOME defaulting to ~/.modelreg/dev) or
`s3://bucket?endpoint=host:port&secure=0&region=us-east-1` with
MODELREG_S3_ACCESS_KEY / MODELREG_S3_SECRET_KEY.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc

from modelreg.artifacts import BlobStore
from modelreg.artifacts.config import open_blob_store
from modelreg.gen.versioning.v1 import versioning_pb2, versioning_pb2_grpc
from modelreg.observability.logging import configure_logging
from modelreg.runtime.host import Runtime, ServiceHost, ServiceSpec
from modelreg.runtime.settings import Settings
from modelreg.versioning.adapters.commands import LoggedVersionCommands
from modelreg.versioning.adapters.postgres import (
    CatalogModelsCache,
    PointersCache,
    PostgresVersionReader,
    VersioningProjection,
)
from modelreg.versioning.api.servicer import VersioningServicer
from modelreg.versioning.application.use_cases import Versioning

TOPIC = "modelreg.versioning.v1"
CATALOG_TOPIC = "modelreg.catalog.v1"
PROMOTION_TOPIC = "modelreg.promotion.v1"
SCHEMA = "versioning"
SERVICE_NAME = versioning_pb2.DESCRIPTOR.services_by_name["VersioningService"].full_name


def artifacts_url(environ: os._Environ[str] | dict[str, str] = os.environ) -> str:
    if url := environ.get("MODELREG_ARTIFACTS"):
        return url
    home = Path(environ.get("MODELREG_HOME", Path.home() / ".modelreg" / "dev"))
    return (home / "artifacts").absolute().as_uri()


def registrar(blobs: Callable[[], BlobStore]) -> Callable[[Runtime, grpc.aio.Server], Sequence[str]]:
    def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
        reader = PostgresVersionReader(runtime.pool, runtime.schema)
        versioning = Versioning(reader, LoggedVersionCommands(runtime.executor, reader), blobs())
        versioning_pb2_grpc.add_VersioningServiceServicer_to_server(VersioningServicer(versioning), server)
        return [SERVICE_NAME]

    return register


def spec(schema: str = SCHEMA, blobs: Callable[[], BlobStore] | None = None) -> ServiceSpec:
    return ServiceSpec(
        name="versioning",
        schema=schema,
        own_topic=TOPIC,
        # The caches are projections too, so the interceptor waits for catalog
        # (and promotion) consistency tokens before a command reads them.
        projections=[
            (TOPIC, VersioningProjection()),
            (CATALOG_TOPIC, CatalogModelsCache()),
            (PROMOTION_TOPIC, PointersCache()),
        ],
        register=registrar(blobs or (lambda: open_blob_store(artifacts_url()))),
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
    parser = argparse.ArgumentParser(prog="modelreg-versioning", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["serve", "project"], nargs="?", default="serve")
    parser.add_argument("--port", type=int, default=50052)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--schema", default=SCHEMA)
    parser.add_argument("--no-projector", action="store_true", help="serve the API only")
    args = parser.parse_args(argv)
    configure_logging("versioning")
    try:
        import uvloop
    except ImportError:  # not on Windows
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()

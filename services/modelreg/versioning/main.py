"""The versioning service process.

python -m modelreg.versioning serve [--port 50052] [--no-projector]
python -m modelreg.versioning project

Artifacts go to MODELREG_ARTIFACTS: `file:///abs/path` (default:
$MODELREG_HOME/artifacts, MODELREG_HOME defaulting to ~/.modelreg/dev) or
`s3://bucket?endpoint=host:port&secure=0&region=us-east-1` with
MODELREG_S3_ACCESS_KEY / MODELREG_S3_SECRET_KEY.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import grpc

from modelreg.access.log import with_grants
from modelreg.artifacts import BlobStore
from modelreg.artifacts.config import open_blob_store
from modelreg.commands.logged import LoggedCommands
from modelreg.gen.versioning.v1 import versioning_pb2, versioning_pb2_grpc
from modelreg.runtime.host import Runtime, ServiceSpec
from modelreg.runtime.process import run_service
from modelreg.versioning.adapters import codec
from modelreg.versioning.adapters.caches import CatalogModelsCache, PointersCache
from modelreg.versioning.adapters.projection import VersioningProjection
from modelreg.versioning.adapters.reader import PostgresVersionReader
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


def spec_form(environ: Mapping[str, str] = os.environ) -> str:
    """How version specs are stored: "compact" (the default: members at their default left
    out) or "full" (every member, as releases before 2026-12-07 wrote and read them); set
    MODELREG_VERSION_SPEC_FORM=full while such a release still runs beside this one."""
    form = environ.get("MODELREG_VERSION_SPEC_FORM", "compact")
    if form not in ("compact", "full"):
        raise ValueError(f"MODELREG_VERSION_SPEC_FORM must be compact or full, not {form!r}")
    return form


def registrar(blobs: Callable[[], BlobStore]) -> Callable[[Runtime, grpc.aio.Server], Sequence[str]]:
    def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
        reader = PostgresVersionReader(runtime.pool, runtime.schema)
        commands = LoggedCommands(runtime.executor, load_part=reader.load_for, encode_on=codec.encode)
        versioning = Versioning(reader, commands, blobs())
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
        projections=with_grants(
            [
                (TOPIC, VersioningProjection(compact_specs=spec_form() == "compact")),
                (CATALOG_TOPIC, CatalogModelsCache()),
                (PROMOTION_TOPIC, PointersCache()),
            ]
        ),
        register=registrar(blobs or (lambda: open_blob_store(artifacts_url()))),
    )


def main(argv: Sequence[str] | None = None) -> None:
    run_service(name="versioning", spec=spec, default_schema=SCHEMA, default_port=50052, argv=argv)


if __name__ == "__main__":
    main()

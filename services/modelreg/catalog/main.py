"""The catalog service process.

python -m modelreg.catalog serve [--port 50051] [--no-projector]
python -m modelreg.catalog project
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from modelreg.catalog.adapters import codec
from modelreg.catalog.adapters.projection import CatalogProjection
from modelreg.catalog.adapters.reader import PostgresCatalogReader
from modelreg.catalog.api.servicer import CatalogServicer
from modelreg.catalog.application.use_cases import Catalog
from modelreg.commands.logged import LoggedCommands
from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from modelreg.runtime.host import Runtime, ServiceSpec
from modelreg.runtime.process import run_service

TOPIC = "modelreg.catalog.v1"
SCHEMA = "catalog"
SERVICE_NAME = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name


def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
    reader = PostgresCatalogReader(runtime.pool, runtime.schema)
    catalog = Catalog(
        reader,
        LoggedCommands(runtime.executor, load=reader.load, encode=codec.encode),
        LoggedCommands(runtime.executor, load=reader.load_namespace, encode=codec.encode),
    )
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


def main(argv: Sequence[str] | None = None) -> None:
    run_service(name="catalog", spec=spec, default_schema=SCHEMA, default_port=50051, argv=argv)


if __name__ == "__main__":
    main()

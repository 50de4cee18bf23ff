"""The catalog service process.

python -m modelreg.catalog serve [--port 50051] [--no-projector]
python -m modelreg.catalog project

Serves CatalogService and AccessService (grants, recorded on the catalog topic).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from modelreg.access.log import with_grants
from modelreg.catalog.adapters import access, codec
from modelreg.catalog.adapters.projection import CatalogProjection
from modelreg.catalog.adapters.reader import PostgresCatalogReader
from modelreg.catalog.api.access import AccessServicer
from modelreg.catalog.api.servicer import CatalogServicer
from modelreg.catalog.application.access import AccessAdmin
from modelreg.catalog.application.use_cases import Catalog
from modelreg.commands.logged import LoggedCommands
from modelreg.gen.catalog.v1 import access_pb2, access_pb2_grpc, catalog_pb2, catalog_pb2_grpc
from modelreg.runtime.host import Runtime, ServiceSpec
from modelreg.runtime.process import run_service

TOPIC = "modelreg.catalog.v1"
SCHEMA = "catalog"
SERVICE_NAME = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
ACCESS_SERVICE_NAME = access_pb2.DESCRIPTOR.services_by_name["AccessService"].full_name


def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
    reader = PostgresCatalogReader(runtime.pool, runtime.schema)
    catalog = Catalog(
        reader,
        LoggedCommands(runtime.executor, load=reader.load, encode=codec.encode),
        LoggedCommands(runtime.executor, load=reader.load_namespace, encode=codec.encode),
    )
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(catalog), server)
    grants = access.PostgresGrantsReader(runtime.pool, runtime.schema)
    admin = AccessAdmin(
        grants,
        LoggedCommands(runtime.executor, load=grants.load_grants, encode=access.encode),
        lambda: runtime.access.bootstrap,
    )
    access_pb2_grpc.add_AccessServiceServicer_to_server(AccessServicer(admin), server)
    return [SERVICE_NAME, ACCESS_SERVICE_NAME]


def spec(schema: str = SCHEMA) -> ServiceSpec:
    return ServiceSpec(
        name="catalog",
        schema=schema,
        own_topic=TOPIC,
        projections=with_grants([(TOPIC, CatalogProjection())]),
        register=register,
    )


def main(argv: Sequence[str] | None = None) -> None:
    run_service(name="catalog", spec=spec, default_schema=SCHEMA, default_port=50051, argv=argv)


if __name__ == "__main__":
    main()

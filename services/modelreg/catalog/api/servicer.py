"""The CatalogService servicer: map from the proto, call the use case, map back."""

from __future__ import annotations

import grpc

from modelreg.catalog.api.mapping import create_command, to_proto
from modelreg.catalog.application.use_cases import Catalog
from modelreg.catalog.domain.names import parse_model_name
from modelreg.errors import InvalidArgument
from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from modelreg.grpcutil.context import request_context
from modelreg.grpcutil.interceptor import set_token

MAX_REQUEST_ID_CHARS = 128


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def CreateRegisteredModel(  # noqa: N802 - gRPC method name
        self, request: catalog_pb2.CreateRegisteredModelRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.RegisteredModel:
        if len(request.request_id) > MAX_REQUEST_ID_CHARS:
            raise InvalidArgument.of("request_id", f"is longer than {MAX_REQUEST_ID_CHARS} characters")
        written = await self._catalog.create(
            create_command(request), request_context().event_context(request.request_id)
        )
        set_token(context, written.token)
        return to_proto(written.model)

    async def GetRegisteredModel(  # noqa: N802
        self, request: catalog_pb2.GetRegisteredModelRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.RegisteredModel:
        return to_proto(await self._catalog.get(parse_model_name(request.name)))

    async def ListRegisteredModels(  # noqa: N802
        self, request: catalog_pb2.ListRegisteredModelsRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.ListRegisteredModelsResponse:
        page = await self._catalog.list(request.parent, request.page_size, request.page_token)
        return catalog_pb2.ListRegisteredModelsResponse(
            registered_models=[to_proto(m) for m in page.models], next_page_token=page.next_page_token
        )

"""The catalog's gRPC servicer: map the request, call the use case, map the result back."""

from __future__ import annotations

from modelreg.catalog.api import mapping
from modelreg.catalog.api.mapping import namespace_to_proto, to_proto
from modelreg.catalog.application.use_cases import Catalog, ListRequest, Written
from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from modelreg.grpcutil.context import ServicerContext as Context
from modelreg.grpcutil.context import request_context
from modelreg.grpcutil.interceptor import set_token
from modelreg.names import parse_model_name, parse_parent


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def _answer(self, written: Written, context: Context) -> catalog_pb2.RegisteredModel:
        set_token(context, written.token)
        return to_proto(written.model)

    async def CreateRegisteredModel(  # noqa: N802 - gRPC method name
        self, request: catalog_pb2.CreateRegisteredModelRequest, context: Context
    ) -> catalog_pb2.RegisteredModel:
        events = request_context().event_context()
        return self._answer(await self._catalog.create(mapping.create_command(request), events), context)

    async def GetRegisteredModel(  # noqa: N802
        self, request: catalog_pb2.GetRegisteredModelRequest, context: Context
    ) -> catalog_pb2.RegisteredModel:
        return to_proto(await self._catalog.get(parse_model_name(request.name), request.show_deleted))

    async def ListRegisteredModels(  # noqa: N802
        self, request: catalog_pb2.ListRegisteredModelsRequest, context: Context
    ) -> catalog_pb2.ListRegisteredModelsResponse:
        page = await self._catalog.list(
            ListRequest(
                parent=request.parent,
                page_size=request.page_size,
                page_token=request.page_token,
                filter=request.filter,
                order_by=request.order_by,
                show_deleted=request.show_deleted,
            )
        )
        return catalog_pb2.ListRegisteredModelsResponse(
            registered_models=[to_proto(m) for m in page.models], next_page_token=page.next_page_token
        )

    async def UpdateRegisteredModel(  # noqa: N802
        self, request: catalog_pb2.UpdateRegisteredModelRequest, context: Context
    ) -> catalog_pb2.RegisteredModel:
        events = request_context().event_context()
        return self._answer(await self._catalog.update(mapping.update_command(request), events), context)

    async def ArchiveRegisteredModel(  # noqa: N802
        self, request: catalog_pb2.ArchiveRegisteredModelRequest, context: Context
    ) -> catalog_pb2.RegisteredModel:
        events = request_context().event_context()
        return self._answer(await self._catalog.update(mapping.archive_command(request), events), context)

    async def RestoreRegisteredModel(  # noqa: N802
        self, request: catalog_pb2.RestoreRegisteredModelRequest, context: Context
    ) -> catalog_pb2.RegisteredModel:
        events = request_context().event_context()
        return self._answer(await self._catalog.update(mapping.restore_command(request), events), context)

    async def DeleteRegisteredModel(  # noqa: N802
        self, request: catalog_pb2.DeleteRegisteredModelRequest, context: Context
    ) -> catalog_pb2.RegisteredModel:
        events = request_context().event_context()
        return self._answer(await self._catalog.update(mapping.delete_command(request), events), context)

    async def CreateNamespace(  # noqa: N802
        self, request: catalog_pb2.CreateNamespaceRequest, context: Context
    ) -> catalog_pb2.Namespace:
        events = request_context().event_context()
        written = await self._catalog.create_namespace(mapping.create_namespace_command(request), events)
        set_token(context, written.token)
        return namespace_to_proto(written.namespace)

    async def GetNamespace(  # noqa: N802
        self, request: catalog_pb2.GetNamespaceRequest, context: Context
    ) -> catalog_pb2.Namespace:
        return namespace_to_proto(await self._catalog.get_namespace(parse_parent(request.name, "name")))

    async def ListNamespaces(  # noqa: N802
        self, request: catalog_pb2.ListNamespacesRequest, context: Context
    ) -> catalog_pb2.ListNamespacesResponse:
        page = await self._catalog.list_namespaces(request.page_size, request.page_token)
        return catalog_pb2.ListNamespacesResponse(
            namespaces=[namespace_to_proto(n) for n in page.namespaces], next_page_token=page.next_page_token
        )

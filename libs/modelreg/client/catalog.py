"""The catalog sub-client: namespaces and registered models."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from modelreg.client.blocking import Blocking, Facade
from modelreg.client.connection import Connection
from modelreg.client.uris import parse_uri
from modelreg.gen.catalog.v1 import catalog_pb2


class CatalogClient:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def register_model(
        self,
        uri: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> catalog_pb2.RegisteredModel:
        """Registers `ns/model` (or `modelreg://ns/model`)."""
        parsed = parse_uri(uri)
        connection = self._connection
        return await connection.call(
            connection.catalog.CreateRegisteredModel,
            catalog_pb2.CreateRegisteredModelRequest(
                parent=parsed.parent,
                registered_model_id=parsed.model,
                registered_model=catalog_pb2.RegisteredModel(description=description, tags=tags or {}),
                request_id=request_id or str(uuid.uuid4()),
            ),
        )

    async def get_model(self, uri: str) -> catalog_pb2.RegisteredModel:
        connection = self._connection
        return await connection.call(
            connection.catalog.GetRegisteredModel,
            catalog_pb2.GetRegisteredModelRequest(name=parse_uri(uri).model_name),
        )

    async def list_models(self, namespace: str, *, page_size: int = 100) -> list[catalog_pb2.RegisteredModel]:
        """Every model of a namespace, following the pages."""
        return await self.search_models(namespace, page_size=page_size)

    async def search_models(
        self, namespace: str, *, filter: str = "", order_by: str = "", page_size: int = 100
    ) -> list[catalog_pb2.RegisteredModel]:
        """Models of a namespace matching `filter` (AND/OR/NOT, comparisons, LIKE, IN over
        name, tags.k, properties.k, create_time, update_time, state), all pages."""
        connection = self._connection
        request = catalog_pb2.ListRegisteredModelsRequest(
            parent=f"namespaces/{namespace}", page_size=page_size, filter=filter, order_by=order_by
        )
        pages = connection.pages(connection.catalog.ListRegisteredModels, request)
        return [model async for page in pages for model in page.registered_models]

    async def models_page(
        self,
        namespace: str,
        *,
        filter: str = "",
        order_by: str = "",
        page_size: int = 25,
        page_token: str = "",
    ) -> catalog_pb2.ListRegisteredModelsResponse:
        """One page of `search_models`; pass its next_page_token back for the next."""
        connection = self._connection
        return await connection.call(
            connection.catalog.ListRegisteredModels,
            catalog_pb2.ListRegisteredModelsRequest(
                parent=f"namespaces/{namespace}",
                page_size=page_size,
                filter=filter,
                order_by=order_by,
                page_token=page_token,
            ),
        )

    async def create_namespace(self, namespace: str, *, description: str = "") -> catalog_pb2.Namespace:
        connection = self._connection
        return await connection.call(
            connection.catalog.CreateNamespace,
            catalog_pb2.CreateNamespaceRequest(
                namespace_id=namespace,
                namespace=catalog_pb2.Namespace(description=description),
                request_id=str(uuid.uuid4()),
            ),
        )

    async def list_namespaces(self) -> list[catalog_pb2.Namespace]:
        connection = self._connection
        request = catalog_pb2.ListNamespacesRequest(page_size=500)
        pages = connection.pages(connection.catalog.ListNamespaces, request)
        return [namespace async for page in pages for namespace in page.namespaces]

    async def update_model(
        self,
        uri: str,
        *,
        description: str | None = None,
        annotations: str | None = None,
        tags: Mapping[str, str] | None = None,
        owners: list[str] | None = None,
        etag: str = "",
    ) -> catalog_pb2.RegisteredModel:
        """Changes only the fields given (an update_mask of them); `etag` guards against lost updates."""
        model = catalog_pb2.RegisteredModel(name=parse_uri(uri).model_name, etag=etag)
        paths = []
        if description is not None:
            model.description = description
            paths.append("description")
        if annotations is not None:
            model.annotations = annotations
            paths.append("annotations")
        if tags is not None:
            model.tags.update(tags)
            paths.append("tags")
        if owners is not None:
            model.owners.extend(owners)
            paths.append("owners")
        request = catalog_pb2.UpdateRegisteredModelRequest(
            registered_model=model, request_id=str(uuid.uuid4())
        )
        request.update_mask.paths.extend(paths)
        connection = self._connection
        return await connection.call(connection.catalog.UpdateRegisteredModel, request)

    async def archive_model(self, uri: str, *, etag: str = "") -> catalog_pb2.RegisteredModel:
        connection = self._connection
        return await connection.call(
            connection.catalog.ArchiveRegisteredModel,
            catalog_pb2.ArchiveRegisteredModelRequest(
                name=parse_uri(uri).model_name, etag=etag, request_id=str(uuid.uuid4())
            ),
        )

    async def restore_model(self, uri: str, *, etag: str = "") -> catalog_pb2.RegisteredModel:
        connection = self._connection
        return await connection.call(
            connection.catalog.RestoreRegisteredModel,
            catalog_pb2.RestoreRegisteredModelRequest(
                name=parse_uri(uri).model_name, etag=etag, request_id=str(uuid.uuid4())
            ),
        )

    async def delete_model(
        self, uri: str, *, reason: str = "", etag: str = ""
    ) -> catalog_pb2.RegisteredModel:
        """Soft delete: the model is hidden and its name stays reserved."""
        connection = self._connection
        return await connection.call(
            connection.catalog.DeleteRegisteredModel,
            catalog_pb2.DeleteRegisteredModelRequest(
                name=parse_uri(uri).model_name, reason=reason, etag=etag, request_id=str(uuid.uuid4())
            ),
        )


class SyncCatalogClient(Facade[CatalogClient]):
    models_page = Blocking(CatalogClient.models_page)
    register_model = Blocking(CatalogClient.register_model)
    get_model = Blocking(CatalogClient.get_model)
    list_models = Blocking(CatalogClient.list_models)
    search_models = Blocking(CatalogClient.search_models)
    create_namespace = Blocking(CatalogClient.create_namespace)
    list_namespaces = Blocking(CatalogClient.list_namespaces)
    update_model = Blocking(CatalogClient.update_model)
    archive_model = Blocking(CatalogClient.archive_model)
    restore_model = Blocking(CatalogClient.restore_model)
    delete_model = Blocking(CatalogClient.delete_model)

"""The typed Python SDK: one `Registry` (sync) / `AsyncRegistry` (async) over the services.

It threads consistency tokens between calls by itself: every write's token is
merged into the client's, and every later call, to any service, carries it, so
a pipeline always reads its own writes. Writes carry a request_id, and on
UNAVAILABLE or DEADLINE_EXCEEDED are retried with the same one, so a retry never
has a second effect.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from modelreg.client.errors import DeadlineExceeded, RegistryError, Unavailable, from_rpc_error
from modelreg.client.uris import parse_uri
from modelreg.eventlog.positions import TOKEN_METADATA_KEY, ConsistencyToken
from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc

T = TypeVar("T")

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass(frozen=True, slots=True)
class Endpoints:
    catalog: str = "127.0.0.1:50051"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Endpoints:
        """MODELREG_<SERVICE>_ADDR wins; else the endpoints `modelreg dev` wrote; else defaults."""
        found: dict[str, str] = {}
        home = Path(environ.get("MODELREG_HOME", Path.home() / ".modelreg" / "dev"))
        written = home / "endpoints.json"
        if written.exists():
            found.update(
                {k: v for k, v in json.loads(written.read_text()).items() if k in cls.__annotations__}
            )
        for service in cls.__annotations__:
            address = environ.get(f"MODELREG_{service.upper()}_ADDR")
            if address:
                found[service] = address
        return cls(**found)


class AsyncRegistry:
    def __init__(
        self,
        endpoints: Endpoints | None = None,
        *,
        bearer_token: str | None = None,
        timeout: float = 30.0,
        retries: int = 4,
    ) -> None:
        self.endpoints = endpoints or Endpoints.from_env()
        self._bearer = bearer_token if bearer_token is not None else os.environ.get("MODELREG_TOKEN")
        self._timeout = timeout
        self._retries = retries
        self._token = ConsistencyToken({})
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._catalog: catalog_pb2_grpc.CatalogServiceStub | None = None

    @property
    def consistency_token(self) -> str:
        """The token of every write this client has seen; hand it to another process to share."""
        return self._token.encode()

    def observe(self, token: str) -> None:
        """Adopts a token obtained elsewhere (e.g. from an upstream pipeline step)."""
        self._token = self._token.merge(ConsistencyToken.decode(token))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    async def __aenter__(self) -> AsyncRegistry:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _channel(self, address: str) -> grpc.aio.Channel:
        # One channel per service for the client's lifetime: no per-call connection cost.
        if address not in self._channels:
            self._channels[address] = grpc.aio.insecure_channel(address)
        return self._channels[address]

    @property
    def catalog(self) -> catalog_pb2_grpc.CatalogServiceStub:
        if self._catalog is None:
            self._catalog = catalog_pb2_grpc.CatalogServiceStub(self._channel(self.endpoints.catalog))
        return self._catalog

    async def _call(self, method: Callable[..., Any], request: Any) -> Any:
        delay = 0.1
        for attempt in range(self._retries + 1):
            metadata = []
            if self._token.required:
                metadata.append((TOKEN_METADATA_KEY, self._token.encode()))
            if self._bearer:
                metadata.append(("authorization", f"Bearer {self._bearer}"))
            call = method(request, metadata=metadata, timeout=self._timeout)
            try:
                response = await call
            except grpc.aio.AioRpcError as error:
                if error.code() in RETRYABLE and attempt < self._retries:
                    await asyncio.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 2.0)
                    continue
                raise from_rpc_error(error) from None
            for key, value in await call.trailing_metadata() or ():
                if key == TOKEN_METADATA_KEY:
                    self.observe(value)
            return response
        raise AssertionError("unreachable")

    # Catalog -------------------------------------------------------------

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
        return await self._call(
            self.catalog.CreateRegisteredModel,
            catalog_pb2.CreateRegisteredModelRequest(
                parent=parsed.parent,
                registered_model_id=parsed.model,
                registered_model=catalog_pb2.RegisteredModel(description=description, tags=tags or {}),
                request_id=request_id or str(uuid.uuid4()),
            ),
        )

    async def get_model(self, uri: str) -> catalog_pb2.RegisteredModel:
        return await self._call(
            self.catalog.GetRegisteredModel,
            catalog_pb2.GetRegisteredModelRequest(name=parse_uri(uri).model_name),
        )

    async def list_models(self, namespace: str, *, page_size: int = 100) -> list[catalog_pb2.RegisteredModel]:
        """Every model of a namespace, following the pages."""
        models: list[catalog_pb2.RegisteredModel] = []
        token = ""
        while True:
            page = await self._call(
                self.catalog.ListRegisteredModels,
                catalog_pb2.ListRegisteredModelsRequest(
                    parent=f"namespaces/{namespace}", page_size=page_size, page_token=token
                ),
            )
            models.extend(page.registered_models)
            token = page.next_page_token
            if not token:
                return models


class Registry:
    """The synchronous face of AsyncRegistry: same methods, blocking."""

    def __init__(self, endpoints: Endpoints | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="modelreg-client", daemon=True)
        self._thread.start()
        self._async = self._run(_build(endpoints, options))

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._async, name)
        if not callable(attribute):
            return attribute

        def blocking(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            return self._run(result) if isinstance(result, Awaitable) else result

        return blocking

    def close(self) -> None:
        self._run(self._async.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


async def _build(endpoints: Endpoints | None, options: dict[str, Any]) -> AsyncRegistry:
    # Channels must be created on the loop that will use them.
    return AsyncRegistry(endpoints, **options)


__all__ = ["AsyncRegistry", "DeadlineExceeded", "Endpoints", "Registry", "RegistryError", "Unavailable"]

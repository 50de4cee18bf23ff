"""What the four sub-clients share: endpoints, one channel per service, the bearer
token, the consistency token, and the retrying call."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import grpc

from modelreg.client.errors import from_rpc_error, retry_delay_of
from modelreg.eventlog.positions import TOKEN_METADATA_KEY, ConsistencyToken
from modelreg.gen.audit.v1 import audit_pb2_grpc
from modelreg.gen.catalog.v1 import access_pb2_grpc, catalog_pb2_grpc
from modelreg.gen.lineage.v1 import lineage_pb2_grpc
from modelreg.gen.promotion.v1 import promotion_pb2_grpc
from modelreg.gen.relay.v1 import webhooks_pb2_grpc
from modelreg.gen.versioning.v1 import versioning_pb2_grpc
from modelreg.runtime.tls import ClientTls, secure_channel

Request = TypeVar("Request")
Response = TypeVar("Response")
Item = TypeVar("Item")


class _Page(Protocol):
    next_page_token: str


Page = TypeVar("Page", bound=_Page)

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
MAX_RETRY_AFTER_S = 10.0
"""A RESOURCE_EXHAUSTED whose RetryInfo asks for longer is raised (ResourceExhausted) at once."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    catalog: str = "127.0.0.1:50051"
    versioning: str = "127.0.0.1:50052"
    lineage: str = "127.0.0.1:50053"
    promotion: str = "127.0.0.1:50054"
    audit: str = "127.0.0.1:50055"
    events: str = "127.0.0.1:50056"

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


class Connection:
    """One per client. Every write's token is merged into `token`, and every later
    call, to any service, carries it, so a pipeline always reads its own writes."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        bearer_token: str | None,
        timeout: float,
        retries: int,
        tls: ClientTls | None = None,
    ) -> None:
        self.endpoints = endpoints
        self._tls = tls if tls is not None else ClientTls.from_env()
        self._bearer = bearer_token if bearer_token is not None else os.environ.get("MODELREG_TOKEN")
        self._timeout = timeout
        self._retries = retries
        self.token = ConsistencyToken({})
        self._channels: dict[str, grpc.aio.Channel] = {}

    def observe(self, token: str) -> None:
        self.token = self.token.merge(ConsistencyToken.decode(token))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    def _channel(self, address: str) -> grpc.aio.Channel:
        # One channel per service for the client's lifetime: no per-call connection cost.
        # Created on first use, so on the event loop that uses it.
        if address not in self._channels:
            self._channels[address] = secure_channel(address, self._tls)
        return self._channels[address]

    # The stubs' overloads type an aio channel's stub as the async one; grpc itself
    # has no types here, so the casts say which overload applies.
    @cached_property
    def access(self) -> access_pb2_grpc.AccessServiceAsyncStub:
        """AccessService is served by the catalog."""
        return cast(
            "access_pb2_grpc.AccessServiceAsyncStub",
            access_pb2_grpc.AccessServiceStub(self._channel(self.endpoints.catalog)),
        )

    @cached_property
    def catalog(self) -> catalog_pb2_grpc.CatalogServiceAsyncStub:
        return cast(
            "catalog_pb2_grpc.CatalogServiceAsyncStub",
            catalog_pb2_grpc.CatalogServiceStub(self._channel(self.endpoints.catalog)),
        )

    @cached_property
    def versioning(self) -> versioning_pb2_grpc.VersioningServiceAsyncStub:
        return cast(
            "versioning_pb2_grpc.VersioningServiceAsyncStub",
            versioning_pb2_grpc.VersioningServiceStub(self._channel(self.endpoints.versioning)),
        )

    @cached_property
    def lineage(self) -> lineage_pb2_grpc.LineageServiceAsyncStub:
        return cast(
            "lineage_pb2_grpc.LineageServiceAsyncStub",
            lineage_pb2_grpc.LineageServiceStub(self._channel(self.endpoints.lineage)),
        )

    @cached_property
    def promotion(self) -> promotion_pb2_grpc.PromotionServiceAsyncStub:
        return cast(
            "promotion_pb2_grpc.PromotionServiceAsyncStub",
            promotion_pb2_grpc.PromotionServiceStub(self._channel(self.endpoints.promotion)),
        )

    @cached_property
    def audit(self) -> audit_pb2_grpc.AuditServiceAsyncStub:
        return cast(
            "audit_pb2_grpc.AuditServiceAsyncStub",
            audit_pb2_grpc.AuditServiceStub(self._channel(self.endpoints.audit)),
        )

    @cached_property
    def webhooks(self) -> webhooks_pb2_grpc.WebhookServiceAsyncStub:
        return cast(
            "webhooks_pb2_grpc.WebhookServiceAsyncStub",
            webhooks_pb2_grpc.WebhookServiceStub(self._channel(self.endpoints.events)),
        )

    def metadata(self) -> list[tuple[str, str]]:
        metadata = []
        if self.token.required:
            # One merged token: the service waits for the positions of the topics it folds.
            metadata.append((TOKEN_METADATA_KEY, self.token.encode()))
        if self._bearer:
            metadata.append(("authorization", f"Bearer {self._bearer}"))
        return metadata

    async def call(self, method: Callable[..., Awaitable[Response]], request: Any) -> Response:
        """A unary call with the tokens; retried on UNAVAILABLE and DEADLINE_EXCEEDED
        (writes carry a request_id, so a retry never has a second effect)."""
        delay = 0.1
        for attempt in range(self._retries + 1):
            call: Any = method(request, metadata=self.metadata(), timeout=self._timeout)
            try:
                response: Response = await call
            except grpc.aio.AioRpcError as error:
                if error.code() in RETRYABLE and attempt < self._retries:
                    await asyncio.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 2.0)
                    continue
                # A rate limit says when to come back (google.rpc.RetryInfo): wait that long.
                wait = retry_delay_of(error) if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED else None
                if wait is not None and wait <= MAX_RETRY_AFTER_S and attempt < self._retries:
                    await asyncio.sleep(wait * (1 + 0.1 * random.random()))
                    continue
                raise from_rpc_error(error) from None
            for key, value in await call.trailing_metadata() or ():
                if key == TOKEN_METADATA_KEY:
                    self.observe(value)
            return response
        raise AssertionError("unreachable")

    async def pages(self, method: Callable[..., Awaitable[Page]], request: Any) -> AsyncIterator[Page]:
        """Every page of a List call: the request again with each next_page_token, until there is none."""
        while True:
            page = await self.call(method, request)
            yield page
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def collect(
        self,
        method: Callable[..., Awaitable[Page]],
        request: Any,
        items: Callable[[Page], Iterable[Item]],
        limit: int | None = None,
    ) -> list[Item]:
        """The `items` of every page of a List call, or only the first `limit` of them."""
        found: list[Item] = []
        async for page in self.pages(method, request):
            found.extend(items(page))
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

"""The typed Python SDK: `AsyncRegistry` (asyncio) and `Registry` (blocking), each with
one sub-client per service: `catalog`, `versioning`, `lineage`, `promotion`, `audit`, `access`
(grants of roles) and `webhooks` (the events relay).

The sub-clients share one connection: its channels, its bearer token and its
consistency token. Every write's token is merged into the client's, and every
later call, to any service, carries it, so a pipeline always reads its own
writes. Writes carry a request_id, and on UNAVAILABLE or DEADLINE_EXCEEDED are
retried with the same one, so a retry never has a second effect.
"""

from __future__ import annotations

from datetime import datetime

from modelreg.client.access import AccessClient, SyncAccessClient
from modelreg.client.asof import ModelAsOf, model_as_of
from modelreg.client.audit import AuditClient, SyncAuditClient
from modelreg.client.blocking import LoopThread
from modelreg.client.catalog import CatalogClient, SyncCatalogClient
from modelreg.client.connection import Connection, Endpoints
from modelreg.client.errors import DeadlineExceeded, RegistryError, Unavailable
from modelreg.client.lineage import LineageClient, SyncLineageClient
from modelreg.client.promotion import PromotionClient, SyncPromotionClient
from modelreg.client.versioning import SyncVersioningClient, VersioningClient
from modelreg.client.webhooks import SyncWebhooksClient, WebhooksClient
from modelreg.runtime.tls import ClientTls


class AsyncRegistry:
    def __init__(
        self,
        endpoints: Endpoints | None = None,
        *,
        bearer_token: str | None = None,
        timeout: float = 30.0,
        retries: int = 6,
        tls: ClientTls | None = None,
    ) -> None:
        """`tls`: TLS (and a client certificate for mTLS); default from MODELREG_TLS_CA,
        MODELREG_TLS_CLIENT_CERT and MODELREG_TLS_CLIENT_KEY (runtime/tls.py)."""
        self._connection = Connection(
            endpoints or Endpoints.from_env(),
            bearer_token=bearer_token,
            timeout=timeout,
            retries=retries,
            tls=tls,
        )
        self.catalog = CatalogClient(self._connection)
        self.versioning = VersioningClient(self._connection)
        self.lineage = LineageClient(self._connection)
        self.promotion = PromotionClient(self._connection)
        self.audit = AuditClient(self._connection)
        self.access = AccessClient(self._connection)
        self.webhooks = WebhooksClient(self._connection)

    @property
    def endpoints(self) -> Endpoints:
        return self._connection.endpoints

    @property
    def consistency_token(self) -> str:
        """The token of every write this client has seen; hand it to another process to share."""
        return self._connection.token.encode()

    def observe(self, token: str) -> None:
        """Adopts a token obtained elsewhere (e.g. from an upstream pipeline step)."""
        self._connection.observe(token)

    async def as_of(self, uri: str, time: datetime) -> ModelAsOf:
        """What each stage and alias of `ns/model` pointed to at `time`, the move that set it
        (requester, approvals) and what that version was trained on, from history."""
        return await model_as_of(self.promotion, self.versioning, self.lineage, uri, time)

    async def close(self) -> None:
        await self._connection.close()

    async def __aenter__(self) -> AsyncRegistry:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


class Registry:
    """The blocking face of AsyncRegistry: the same sub-clients and methods, run on an
    event loop of the client's own thread. `promotion.watch_promotions` is an iterator."""

    def __init__(
        self,
        endpoints: Endpoints | None = None,
        *,
        bearer_token: str | None = None,
        timeout: float = 30.0,
        retries: int = 6,
        tls: ClientTls | None = None,
    ) -> None:
        self._loop = LoopThread()
        self._async = AsyncRegistry(
            endpoints, bearer_token=bearer_token, timeout=timeout, retries=retries, tls=tls
        )
        self.catalog = SyncCatalogClient(self._async.catalog, self._loop)
        self.versioning = SyncVersioningClient(self._async.versioning, self._loop)
        self.lineage = SyncLineageClient(self._async.lineage, self._loop)
        self.promotion = SyncPromotionClient(self._async.promotion, self._loop)
        self.audit = SyncAuditClient(self._async.audit, self._loop)
        self.access = SyncAccessClient(self._async.access, self._loop)
        self.webhooks = SyncWebhooksClient(self._async.webhooks, self._loop)

    @property
    def endpoints(self) -> Endpoints:
        return self._async.endpoints

    @property
    def consistency_token(self) -> str:
        return self._async.consistency_token

    def observe(self, token: str) -> None:
        self._async.observe(token)

    def as_of(self, uri: str, time: datetime) -> ModelAsOf:
        return self._loop.run(self._async.as_of(uri, time))

    def close(self) -> None:
        self._loop.run(self._async.close())
        self._loop.stop()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


__all__ = ["AsyncRegistry", "DeadlineExceeded", "Endpoints", "Registry", "RegistryError", "Unavailable"]

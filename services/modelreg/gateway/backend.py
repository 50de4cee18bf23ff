"""The gateway's one connection to the services: the SDK's Connection, with the caller's
credential taken per HTTP request and one consistency token for the whole process.

MLflow clients carry no consistency token, so the gateway carries it for them: every write
made through this process merges its token into the process's, and every later call (any
service, any HTTP client) sends it, so a create followed by a get, in two HTTP requests, reads
its own write. The token is soft state: a restarted gateway starts from an empty one, which
costs nothing but the cross-service wait it would have bought (every service already answers
a write only after folding it). A client that wants read-your-writes across gateway replicas
sends the `modelreg-consistency-token` response header back as a request header.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from modelreg.client.audit import AuditClient
from modelreg.client.catalog import CatalogClient
from modelreg.client.connection import Connection
from modelreg.client.lineage import LineageClient
from modelreg.client.promotion import PromotionClient
from modelreg.client.versioning import VersioningClient
from modelreg.eventlog.positions import TOKEN_METADATA_KEY, ConsistencyToken
from modelreg.gateway.settings import GatewaySettings

_bearer: contextvars.ContextVar[str | None] = contextvars.ContextVar("gateway_bearer", default=None)
_request_token: contextvars.ContextVar[ConsistencyToken | None] = contextvars.ContextVar(
    "gateway_request_token", default=None
)


class GatewayConnection(Connection):
    """A Connection whose bearer token is the current HTTP request's."""

    def __init__(self, settings: GatewaySettings) -> None:
        super().__init__(
            settings.endpoints,
            bearer_token=settings.service_token or "",
            timeout=settings.timeout_s,
            retries=3,
        )
        self._default_bearer = settings.service_token

    def metadata(self) -> list[tuple[str, str]]:
        token = self.token
        extra = _request_token.get()
        if extra is not None:
            token = token.merge(extra)
        metadata = []
        if token.required:
            metadata.append((TOKEN_METADATA_KEY, token.encode()))
        bearer = _bearer.get() or self._default_bearer
        if bearer:
            metadata.append(("authorization", f"Bearer {bearer}"))
        return metadata


class Backend:
    """What a route handler calls: the SDK's sub-clients over the one GatewayConnection."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.connection = GatewayConnection(settings)
        self.catalog = CatalogClient(self.connection)
        self.versioning = VersioningClient(self.connection)
        self.promotion = PromotionClient(self.connection)
        self.lineage = LineageClient(self.connection)
        self.audit = AuditClient(self.connection)

    def consistency_token(self) -> str:
        """Every write this process has made: a client carries it to another replica."""
        return self.connection.token.encode()

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    async def close(self) -> None:
        await self.connection.close()

    @contextmanager
    def caller(self, bearer: str | None, consistency_token: str | None = None) -> Iterator[None]:
        """Calls made inside the block carry this bearer token (and the client's own token)."""
        reset_bearer = _bearer.set(bearer)
        reset_token = _request_token.set(
            ConsistencyToken.decode(consistency_token) if consistency_token else None
        )
        try:
            yield
        finally:
            _bearer.reset(reset_bearer)
            _request_token.reset(reset_token)

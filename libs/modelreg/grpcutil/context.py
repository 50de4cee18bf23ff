"""Per-request context set by the interceptor and read by servicers."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from modelreg.errors import InvalidArgument
from modelreg.eventlog import ConsistencyToken, EventContext

MAX_REQUEST_ID_CHARS = 128

ServicerContext = grpc.aio.ServicerContext[Any, Any]
"""The context a servicer method receives (grpc.aio's is generic in the request and response)."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    principal: str
    correlation_id: str
    token: ConsistencyToken | None
    request_id: str = ""
    """The request message's request_id, validated; empty when it has none or the call streams requests."""
    groups: frozenset[str] = frozenset()
    """The authenticated principal's groups (a JWT group claim or the token file)."""
    peer: str = ""
    """The caller's address (without its port), which tells anonymous callers apart."""

    def event_context(self) -> EventContext:
        return EventContext(
            actor=self.principal,
            request_id=self.request_id,
            correlation_id=self.correlation_id,
            causation_id=self.request_id or self.correlation_id,
        )


def request_id_of(request: object) -> str:
    """The `request_id` field of a request message, empty when the message has no such field."""
    value = getattr(request, "request_id", "")
    if not isinstance(value, str):
        return ""
    if len(value) > MAX_REQUEST_ID_CHARS:
        raise InvalidArgument.of("request_id", f"is longer than {MAX_REQUEST_ID_CHARS} characters")
    return value


current_request: ContextVar[RequestContext] = ContextVar("modelreg_request")


def request_context() -> RequestContext:
    return current_request.get()

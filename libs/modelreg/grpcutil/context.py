"""Per-request context set by the interceptor and read by servicers."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from modelreg.eventlog import ConsistencyToken, EventContext


@dataclass(frozen=True, slots=True)
class RequestContext:
    principal: str
    correlation_id: str
    token: ConsistencyToken | None

    def event_context(self, request_id: str) -> EventContext:
        return EventContext(
            actor=self.principal,
            request_id=request_id,
            correlation_id=self.correlation_id,
            causation_id=request_id or self.correlation_id,
        )


current_request: ContextVar[RequestContext] = ContextVar("modelreg_request")


def request_context() -> RequestContext:
    return current_request.get()

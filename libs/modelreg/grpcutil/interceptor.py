"""The one server interceptor: context in, domain errors out.

For every call it authenticates the caller, binds the correlation id to the
logs, waits for the caller's consistency token, runs the handler, and maps the
transport-free errors of modelreg.errors to precise status codes. A bug becomes
INTERNAL with a generic message, and is logged with its traceback.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any, Protocol

import grpc
import structlog
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from modelreg.access import AccessControl, Denial
from modelreg.access.summaries import UnverifiedDenials
from modelreg.access.table import action_of
from modelreg.errors import (
    Aborted,
    AlreadyExists,
    ConsistencyTimeout,
    DataLoss,
    FailedPrecondition,
    InvalidArgument,
    ModelregError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from modelreg.eventlog import TOKEN_METADATA_KEY, ConsistencyToken, InvalidToken
from modelreg.grpcutil import decoding
from modelreg.grpcutil.auth import ANONYMOUS, Authenticator
from modelreg.grpcutil.context import RequestContext, ServicerContext, current_request, request_id_of
from modelreg.grpcutil.ratelimit import RateLimited, RateLimiter, RateLimitSettings, peer_key
from modelreg.observability.metrics import RPC_ERRORS, RPC_LATENCY
from modelreg.runtime.tls import client_common_name

log = structlog.get_logger(__name__)

CORRELATION_METADATA_KEY = "x-correlation-id"
DEFAULT_TOKEN_WAIT_S = 5.0

_STATUS: list[tuple[type[ModelregError], grpc.StatusCode]] = [
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (Aborted, grpc.StatusCode.ABORTED),
    (ConsistencyTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (DataLoss, grpc.StatusCode.DATA_LOSS),
    (RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
]


class ProgressWaiter(Protocol):
    async def wait_for(self, required: Any, timeout: float) -> bool: ...


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        authenticator: Authenticator,
        progress: ProgressWaiter | None,
        token_wait_s: float = DEFAULT_TOKEN_WAIT_S,
        transient_errors: tuple[type[BaseException], ...] = (),
        access: AccessControl | None = None,
        limiter: RateLimiter | None = None,
        unverified: UnverifiedDenials | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._unverified = unverified
        self._limiter = limiter or RateLimiter(RateLimitSettings({}, enabled=False))
        self._access = access or AccessControl.disabled()
        self._progress = progress
        self._token_wait_s = token_wait_s
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        # Infrastructure trouble (broker or database unreachable) is UNAVAILABLE, so
        # clients retry with the same request_id, rather than a bug-like INTERNAL.
        self._transient: tuple[type[BaseException], ...] = (
            ConnectionError,
            OSError,
            TimeoutError,
            *transient_errors,
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(("/grpc.health", "/grpc.reflection")):
            return handler
        # The servicer's handler of a method is one object for the server's life, so its
        # wrapper is built once, not on every call.
        cached = self._wrapped.get(details.method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(details.method, handler)
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        deserializer = decoding.checking(handler.request_deserializer)
        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary_unary(request: Any, context: ServicerContext) -> Any:
                return await self._call(method, context, lambda: inner(request, context), request)

            return grpc.unary_unary_rpc_method_handler(unary_unary, deserializer, handler.response_serializer)
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def unary_stream(request: Any, context: ServicerContext) -> Any:
                async def drain() -> None:
                    async for item in inner_stream(request, context):
                        await context.write(item)

                await self._call(method, context, drain, request)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, deserializer, handler.response_serializer
            )
        if handler.stream_unary:
            inner_upload = handler.stream_unary

            async def stream_unary(requests: Any, context: ServicerContext) -> Any:
                def run() -> Awaitable[Any]:
                    ctx = current_request.get()
                    checked = decoding.checked_stream(requests)
                    guarded = self._access.guard_stream(method, checked, ctx.principal, ctx.groups)
                    return inner_upload(guarded, context)

                return await self._call(method, context, run)

            return grpc.stream_unary_rpc_method_handler(
                stream_unary, deserializer, handler.response_serializer
            )
        return handler

    async def _call(
        self,
        method: str,
        context: ServicerContext,
        run: Callable[[], Awaitable[Any]],
        request: object = None,
    ) -> Any:
        """Runs the handler in its RequestContext; `request` is the one request message, if the
        call has one (a client-streaming call's messages carry no request_id)."""
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        pairs = tuple(context.invocation_metadata() or ())
        metadata = dict(pairs)
        # The credential leaves the metadata at once, so nothing that logs it can show it.
        authorization = metadata.pop("authorization", None)
        pairs = tuple((key, value) for key, value in pairs if key != "authorization")
        correlation_id = str(metadata.get(CORRELATION_METADATA_KEY) or uuid.uuid4())
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id, method=method)
        caller = peer_key(context.peer())
        peer = caller.removeprefix("peer:")
        try:
            decoding.raise_if_refused(request)
            identity = self._authenticator.identify(
                authorization,
                client_common_name(context),
                before_hash=partial(self._limiter.check_denials, caller),
            )
            # Anonymous callers are told apart by address (the rate limits' key).
            caller = caller if identity.principal == ANONYMOUS else identity.principal
            self._limiter.admit(method, caller)
            # gRPC metadata may repeat a key: a client that wrote to several services may send each token.
            token = _token([value for key, value in pairs if key == TOKEN_METADATA_KEY])
            ctx = RequestContext(
                identity.principal, correlation_id, token, request_id_of(request), identity.groups, peer
            )
            current_request.set(ctx)
            await self._authorize_then_wait(method, request, ctx, context)
            return await run()
        except ModelregError as error:
            if isinstance(error, Unauthenticated) and self._unverified is not None:
                # Counted into a periodic summary, never a fact per call (access/summaries.py).
                self._unverified.note(peer, Denial("", action_of(method), "", "", str(error)))
            if isinstance(error, (Unauthenticated, PermissionDenied)):
                error = self._limiter.charge_denial(caller) or error
            code = _code_of(error)
            await context.abort_with_status(rpc_status.to_status(_status(code, error)))
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except self._transient as error:
            code = grpc.StatusCode.UNAVAILABLE
            log.warning("dependency_unavailable", error=repr(error))
            await context.abort(code, "a backing service is unavailable; retry with the same request_id")
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("unhandled_error")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")
        finally:
            name = code.name if isinstance(code, grpc.StatusCode) else str(code)
            elapsed = time.perf_counter() - started
            RPC_LATENCY.labels(method, name).observe(elapsed)
            if code == grpc.StatusCode.OK:
                log.debug("rpc", code=name, duration_ms=round(elapsed * 1000, 3))
            else:
                RPC_ERRORS.labels(method, name).inc()
                log.info("rpc_failed", code=name, duration_ms=round(elapsed * 1000, 3))

    async def _authorize_then_wait(
        self, method: str, request: object, ctx: RequestContext, context: ServicerContext
    ) -> None:
        """RBAC (modelreg.access), then the wait for the caller's consistency token. A call the
        bootstrap grants alone do not allow, and that carries a token, is decided after the
        wait, so a grant or a revocation on the log it saw counts. A client stream is
        authorized on its first message instead (guard_stream)."""
        token = ctx.token
        wait = (
            (lambda: self._await_token(token, context))
            if token is not None and self._progress is not None
            else None
        )
        waited = request is not None and await self._access.authorize(
            method, request, ctx.principal, ctx.groups, wait
        )
        if wait is not None and not waited:
            await wait()

    async def _await_token(self, token: ConsistencyToken, context: ServicerContext) -> None:
        assert self._progress is not None
        remaining = context.time_remaining()
        wait = self._token_wait_s if remaining is None else min(self._token_wait_s, remaining)
        if not await self._progress.wait_for(token.required, wait):
            raise ConsistencyTimeout(
                f"this service has not yet projected the writes in the consistency token "
                f"after waiting {wait:.2f}s; retry later or without the token"
            )


def _token(values: list[str]) -> ConsistencyToken | None:
    """All the tokens sent, merged: the call waits for every one of them."""
    merged = None
    for raw in values:
        if not raw:
            continue
        try:
            token = ConsistencyToken.decode(raw)
        except InvalidToken:
            raise InvalidArgument.of(TOKEN_METADATA_KEY, "is not a token issued by modelreg") from None
        merged = token if merged is None else merged.merge(token)
    return merged


def _code_of(error: ModelregError) -> grpc.StatusCode:
    for kind, code in _STATUS:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def _status(code: grpc.StatusCode, error: ModelregError) -> status_pb2.Status:
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=str(error))
    if isinstance(error, InvalidArgument):
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        status.details.add().Pack(detail)
    if isinstance(error, RateLimited):
        delay = duration_pb2.Duration()
        delay.FromTimedelta(timedelta(seconds=error.retry_after_s))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return status


def set_token(context: ServicerContext, token: ConsistencyToken) -> None:
    """Returns a write's consistency token to the client as trailing metadata."""
    context.set_trailing_metadata(((TOKEN_METADATA_KEY, token.encode()),))

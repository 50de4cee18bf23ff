"""Secrets never reach the logs: an unhandled error in a call that carried a bearer token
logs its traceback, and neither the token nor the interceptor's metadata is in it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog

from modelreg.grpcutil.auth import BearerTokenAuthenticator
from modelreg.grpcutil.interceptor import ServiceInterceptor
from modelreg.observability.logging import LOG_FILE_ENV, configure_logging
from tests.logscan import register_secret, scan

TOKEN = register_secret("log-scan-bearer-7f3a9c1e5b2d4a68")
METHOD = "/modelreg.test.v1.Boom/Fail"


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Logging as a service process configures it, into a file of this test; restored after."""
    path = tmp_path / "service.log"
    configure_logging("boom", cache=False, environ={LOG_FILE_ENV: str(path)})
    try:
        yield path
    finally:
        configure_logging("tests", cache=False)


def _failing_service() -> grpc.GenericRpcHandler:
    async def fail(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        metadata = dict(context.invocation_metadata() or ())  # a handler holding the header too
        raise RuntimeError(f"boom while handling a call from {len(metadata)} headers")

    handler = grpc.unary_unary_rpc_method_handler(fail)
    return grpc.method_handlers_generic_handler("modelreg.test.v1.Boom", {"Fail": handler})


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])
async def test_an_unhandled_error_logs_its_traceback_without_the_bearer_token(
    log_file: Path, as_json: bool
) -> None:
    configure_logging("boom", cache=False, json=as_json, environ={LOG_FILE_ENV: str(log_file)})
    authenticator = BearerTokenAuthenticator({TOKEN: "alice"})
    server = grpc.aio.server(interceptors=[ServiceInterceptor(authenticator, None)])
    server.add_generic_rpc_handlers((_failing_service(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(METHOD)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call(b"", metadata=[("authorization", f"Bearer {TOKEN}")], timeout=30)
    finally:
        await server.stop(None)
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert TOKEN not in (raised.value.details() or "")

    text = await asyncio.to_thread(log_file.read_text)
    # The traceback is there (the scan is not looking at an empty log) ...
    assert "unhandled_error" in text
    assert "RuntimeError" in text and "boom while handling" in text
    if as_json:
        record = next(json.loads(line) for line in text.splitlines() if "unhandled_error" in line)
        frames = [frame for exc in record["exception"] for frame in exc["frames"]]
        assert frames and all("locals" not in frame or not frame["locals"] for frame in frames)
    # ... and the token is nowhere in it.
    assert TOKEN not in text
    assert scan([log_file], [TOKEN]).findings == []


def test_fields_and_text_that_hold_credentials_are_redacted(log_file: Path) -> None:
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"
    api_token = "mr_k3y1d_" + "S" * 32
    log = structlog.get_logger("redaction")
    log.info("call", authorization=f"Bearer {TOKEN}", metadata=[("authorization", f"Bearer {TOKEN}")])
    log.info("keys", api_key="sk-live-0123456789", webhook_secret="whsec-0123456789", password="hunter2!!")
    log.info("text", detail=f"refused {jwt_like} and {api_token}", nested={"deep": [f"bearer {TOKEN}"]})
    try:
        raise ValueError(f"token was Bearer {TOKEN}")
    except ValueError:
        log.exception("failed")
    text = log_file.read_text()
    for secret in (TOKEN, jwt_like, api_token, "sk-live-0123456789", "whsec-0123456789", "hunter2!!"):
        assert secret not in text
    assert text.count("[REDACTED]") >= 8
    # What is not a secret is left alone.
    assert '"event": "keys"' in text and "refused" in text

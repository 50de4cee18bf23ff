"""Rate limits against a running catalog replica with low limits: per principal and per
method class, RESOURCE_EXHAUSTED with a google.rpc.RetryInfo delay, other callers
unaffected, calls pass again after the delay; denials (PERMISSION_DENIED and
UNAUTHENTICATED, by principal or by peer address) have a bucket of their own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelreg.client import AsyncRegistry, Endpoints, ResourceExhausted
from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from modelreg.gen.catalog.v1 import catalog_pb2_grpc
from modelreg.grpcutil.tokenfile import create_token
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.helpers import unique
from tests.logscan import register_secret

TOKENS = {who: register_secret(f"rate-limit-{who}-token-5c2e91") for who in ("alice", "bob", "carol")}
# Bursts small and refills slow (one token per 4 s for reads), so a loaded CPU cannot refill
# a bucket between the calls that empty it.
LIMITS = "reads=0.25/3,writes=0.25/2,denials=0.25/2"


def auth(who: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {TOKENS[who]}")]


@pytest.fixture(scope="module")
def api_token(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("rl") / "tokens.json"
    token, _ = create_token(path, "dora")
    return path, register_secret(token)


@pytest.fixture(scope="module")
async def limited(
    settings: Settings, catalog_host: ServiceHost, api_token: tuple[Path, str]
) -> AsyncIterator[ServiceHost]:
    from modelreg.catalog.main import spec

    with pytest.MonkeyPatch.context() as env:
        env.setenv("MODELREG_AUTH_TOKEN_FILE", str(api_token[0]))
        env.setenv("MODELREG_AUTH", "required")
        env.setenv("MODELREG_AUTH_TOKENS", ",".join(f"{t}={who}" for who, t in TOKENS.items()))
        env.setenv("MODELREG_ROLES", "alice=editor@*,bob=editor@*")
        env.delenv("MODELREG_ADMINS", raising=False)
        env.setenv("MODELREG_RATE_LIMITS", LIMITS)
        replica = ServiceHost(spec(), settings)
        await replica.start(project=False, port=0)
    try:
        yield replica
    finally:
        await replica.stop()


@pytest.fixture
async def stub(limited: ServiceHost) -> AsyncIterator[catalog_pb2_grpc.CatalogServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{limited.port}") as channel:
        yield catalog_pb2_grpc.CatalogServiceStub(channel)


def retry_delay(error: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToTimedelta().total_seconds()
    raise AssertionError("RESOURCE_EXHAUSTED without RetryInfo")


async def until_limited(
    call: Callable[[], Awaitable[Any]], at_most: int
) -> tuple[list[str], grpc.aio.AioRpcError]:
    """Calls until RESOURCE_EXHAUSTED; the status names of the calls before it, and its error."""
    outcomes = []
    for _ in range(at_most):
        try:
            await call()
            outcomes.append("OK")
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                return outcomes, error
            outcomes.append(error.code().name)
    raise AssertionError(f"never limited after {at_most} calls: {outcomes}")


async def test_reads_beyond_the_limit_wait_for_the_retry_delay_and_others_are_unaffected(
    stub: catalog_pb2_grpc.CatalogServiceStub,
) -> None:
    def list_as(who: str) -> Callable[[], Awaitable[Any]]:
        return lambda: stub.ListNamespaces(pb.ListNamespacesRequest(), metadata=auth(who), timeout=30)

    passed, error = await until_limited(list_as("alice"), at_most=10)
    assert passed.count("OK") >= 3 and set(passed) == {"OK"}
    assert "reads" in (error.details() or "")
    delay = retry_delay(error)
    assert 0 < delay <= 4.0
    # bob's bucket is his own, and alice's writes are another class.
    await list_as("bob")()
    created = await stub.CreateRegisteredModel(
        pb.CreateRegisteredModelRequest(
            parent=f"namespaces/{unique('rl')}",
            registered_model_id="m",
            registered_model=pb.RegisteredModel(),
        ),
        metadata=auth("alice"),
        timeout=30,
    )
    assert created.created_by == "alice"
    # After the delay the bucket holds a token again.
    await asyncio.sleep(delay)
    await list_as("alice")()


async def test_denials_have_their_own_bucket_and_then_every_call_of_the_caller_waits(
    stub: catalog_pb2_grpc.CatalogServiceStub,
) -> None:
    async def create_as_carol() -> None:
        await stub.CreateRegisteredModel(
            pb.CreateRegisteredModelRequest(
                parent=f"namespaces/{unique('rl')}",
                registered_model_id="m",
                registered_model=pb.RegisteredModel(),
            ),
            metadata=auth("carol"),
            timeout=30,
        )

    denied, error = await until_limited(create_as_carol, at_most=10)
    assert denied and set(denied) == {"PERMISSION_DENIED"}
    assert "denials" in (error.details() or "") and retry_delay(error) > 0
    # Now even carol's reads wait: authorization does not run (and record) for her meanwhile.
    with pytest.raises(grpc.aio.AioRpcError) as read:
        await stub.ListNamespaces(pb.ListNamespacesRequest(), metadata=auth("carol"), timeout=30)
    assert read.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_unauthenticated_calls_are_limited_by_peer_address(
    stub: catalog_pb2_grpc.CatalogServiceStub, limited: ServiceHost, api_token: tuple[Path, str]
) -> None:
    forged = [("authorization", "Bearer forged-token-for-rate-limit")]
    refused, error = await until_limited(
        lambda: stub.ListNamespaces(pb.ListNamespacesRequest(), metadata=forged, timeout=30), at_most=10
    )
    assert refused and set(refused) == {"UNAUTHENTICATED"}
    # A new connection (another source port) is the same address: still limited.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{limited.port}") as channel:
        again = catalog_pb2_grpc.CatalogServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as second:
            await again.ListNamespaces(pb.ListNamespacesRequest(), metadata=forged, timeout=30)
        assert second.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Nor does a guessed API token secret get its scrypt check meanwhile.
    guess = [("authorization", f"Bearer {api_token[1][:-4]}AAAA")]
    with pytest.raises(grpc.aio.AioRpcError) as guessed:
        await stub.ListNamespaces(pb.ListNamespacesRequest(), metadata=guess, timeout=30)
    assert guessed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # bob, authenticated, from the same address, is not charged for it.
    await stub.ListNamespaces(pb.ListNamespacesRequest(), metadata=auth("bob"), timeout=30)


async def test_the_sdk_waits_out_the_retry_delay_or_raises_resource_exhausted(limited: ServiceHost) -> None:
    address = f"127.0.0.1:{limited.port}"
    async with AsyncRegistry(Endpoints(catalog=address), bearer_token=TOKENS["bob"], retries=0) as sdk:
        with pytest.raises(ResourceExhausted) as raised:
            for _ in range(10):
                await sdk.catalog.list_namespaces()
        assert raised.value.retry_after_s is not None and raised.value.retry_after_s > 0
    async with AsyncRegistry(Endpoints(catalog=address), bearer_token=TOKENS["bob"], retries=3) as sdk:
        await sdk.catalog.list_namespaces()  # waits for the RetryInfo delay, then succeeds

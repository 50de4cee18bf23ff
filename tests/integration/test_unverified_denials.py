"""Refusals of callers with no verified identity reach the log as bounded summaries (issue 12:
"denials go to the audit trail without letting an unauthenticated caller grow the log without
bound"; issue 15: every UNAUTHENTICATED and PERMISSION_DENIED is recorded).

A bad credential (UNAUTHENTICATED) or an anonymous caller without a role (PERMISSION_DENIED),
however many calls it makes, appends one AccessDenied summary per window, address, method and
reason, with the count, never one fact per call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from modelreg.gen.catalog.v1 import catalog_pb2_grpc
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.helpers import environment, log_envelopes, unique, with_own_topics

CALLS = 30
WINDOW_S = 1.0


@pytest.fixture(scope="module")
async def guarded(settings: Settings) -> AsyncIterator[tuple[ServiceHost, grpc.aio.Channel]]:
    """A catalog that knows one token, lets anonymous callers in as nobody, and grants a
    role to alice only."""
    from modelreg.catalog.main import spec

    own = dataclasses.replace(with_own_topics(settings, "unverified"), denial_summary_s=WINDOW_S)
    with environment(
        {
            "MODELREG_AUTH_TOKENS": "t-alice=alice",
            "MODELREG_AUTH_ALLOW_ANONYMOUS": "1",
            "MODELREG_ROLES": "alice=editor@*",
        }
    ):
        host = ServiceHost(spec(unique("unverified_catalog_")), own)
        await host.start(port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            yield host, channel
    finally:
        await host.stop()


async def denials(host: ServiceHost) -> list[Envelope]:
    envelopes = await log_envelopes(host.settings.kafka, host.topic("modelreg.catalog.v1"))
    return [e for e in envelopes if e.WhichOneof("payload") == "access_refused"]


async def seen(host: ServiceHost) -> set[str]:
    return {e.event_id for e in await denials(host)}


async def summaries_after(host: ServiceHost, before: set[str], calls: int) -> list[Envelope]:
    """The denials recorded since `before`, once their counts add up to `calls` and three more
    windows have passed (partitions are read one after another, so the new ones are told by
    event id, not position)."""
    deadline = time.monotonic() + 30
    while True:
        found = [e for e in await denials(host) if e.event_id not in before]
        if sum(max(e.access_refused.count, 1) for e in found) >= calls or time.monotonic() > deadline:
            await asyncio.sleep(WINDOW_S * 3)
            return [e for e in await denials(host) if e.event_id not in before]
        await asyncio.sleep(0.1)


def bounded_by_time(summaries: list[Envelope], elapsed_s: float) -> None:
    """Every call counted once, in at most one summary per window the burst spanned: the log
    grows with time, not with the number of calls."""
    assert sum(e.access_refused.count for e in summaries) == CALLS
    assert 1 <= len(summaries) <= int(elapsed_s / WINDOW_S) + 2 < CALLS


async def test_bad_credentials_append_counted_summaries_bounded_by_time(
    guarded: tuple[ServiceHost, grpc.aio.Channel],
) -> None:
    host, channel = guarded
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    before = await seen(host)
    started = time.monotonic()
    for _ in range(CALLS):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetRegisteredModel(
                pb.GetRegisteredModelRequest(name="namespaces/x/models/y"),
                metadata=[("authorization", "Bearer not-a-token")],
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    elapsed = time.monotonic() - started
    summaries = await summaries_after(host, before, CALLS)
    bounded_by_time(summaries, elapsed)
    for summary in summaries:
        denial = summary.access_refused
        assert (denial.action, denial.peer, summary.actor) == (
            "GetRegisteredModel",
            "127.0.0.1",
            "unauthenticated",
        )
        assert "not-a-token" not in str(summary)


async def test_anonymous_refusals_append_counted_summaries_bounded_by_time(
    guarded: tuple[ServiceHost, grpc.aio.Channel],
) -> None:
    host, channel = guarded
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    before = await seen(host)
    started = time.monotonic()
    for _ in range(CALLS):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateRegisteredModel(
                pb.CreateRegisteredModelRequest(
                    parent="namespaces/ns", registered_model_id="m", registered_model=pb.RegisteredModel()
                )
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    elapsed = time.monotonic() - started
    summaries = await summaries_after(host, before, CALLS)
    bounded_by_time(summaries, elapsed)
    for summary in summaries:
        denial = summary.access_refused
        assert (denial.action, denial.principal, denial.peer, denial.namespace) == (
            "CreateRegisteredModel",
            "anonymous",
            "127.0.0.1",
            "ns",
        )


async def test_an_authenticated_callers_denial_is_still_one_fact_per_call(
    guarded: tuple[ServiceHost, grpc.aio.Channel],
) -> None:
    host, channel = guarded
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    before = await seen(host)
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateNamespace(  # needs admin; alice is an editor
                pb.CreateNamespaceRequest(namespace_id="ns", namespace=pb.Namespace()),
                metadata=[("authorization", "Bearer t-alice")],
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    found = await summaries_after(host, before, 3)  # count 0: one fact per call
    assert [(e.actor, e.access_refused.count, e.access_refused.action) for e in found] == [
        ("alice", 0, "CreateNamespace")
    ] * 3

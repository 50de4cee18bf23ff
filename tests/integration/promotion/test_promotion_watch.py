"""WatchPromotions: history from a resume token, then live changes, with no gap and
no repeat, across a restart of the service that serves the watch."""

from __future__ import annotations

import asyncio

import grpc

from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from modelreg.gen.promotion.v1 import promotion_pb2_grpc
from modelreg.runtime.settings import Settings
from tests.integration.promotion.conftest import Facts, auth, start_promotion
from tests.integration.promotion.test_promotion_service import new_model, request

WATCH_SCHEMA = "promotion_watch"


async def move(stub, model: str, version: int) -> None:
    await request(stub, model, ("champion", version))


def version_of(item: pb.WatchPromotionsResponse) -> int:
    (change,) = item.entry.changes
    return change.version


async def read(call, count: int) -> list[pb.WatchPromotionsResponse]:
    return [await asyncio.wait_for(call.read(), 10) for _ in range(count)]


async def test_watch_resumes_without_gaps_across_a_restart(
    promotion_settings: Settings, promotion_stub, facts: Facts
) -> None:
    model = new_model()
    other = new_model()
    for n in range(1, 9):
        await facts.version(model, n)
    await facts.version(other, 1)
    for n in (1, 2, 3):
        await move(promotion_stub, model, n)
    await move(promotion_stub, other, 1)  # another model: filtered out

    # The watch is served by its own host (own schema, same topic), which is restarted below.
    watcher = await start_promotion(promotion_settings, schema=WATCH_SCHEMA)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
            stub = promotion_pb2_grpc.PromotionServiceStub(channel)
            call = stub.WatchPromotions(pb.WatchPromotionsRequest(parent=model), metadata=auth("victor"))
            first = await read(call, 3)
            assert [version_of(i) for i in first] == [1, 2, 3]
            assert all(i.entry.model == model for i in first)
            # Live: a transition after the history was read arrives on the same stream.
            await move(promotion_stub, model, 4)
            (live,) = await read(call, 1)
            assert version_of(live) == 4
            call.cancel()
            resume = first[1].resume_token  # as if the client had only processed item 2
    finally:
        await watcher.stop()

    # While the watch service is down, more transitions happen.
    for n in (5, 6):
        await move(promotion_stub, model, n)

    watcher = await start_promotion(promotion_settings, schema=WATCH_SCHEMA)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
            stub = promotion_pb2_grpc.PromotionServiceStub(channel)
            call = stub.WatchPromotions(
                pb.WatchPromotionsRequest(parent=model, resume_token=resume), metadata=auth("victor")
            )
            resumed = await read(call, 4)
            assert [version_of(i) for i in resumed] == [3, 4, 5, 6]
            await move(promotion_stub, model, 7)
            (live,) = await read(call, 1)
            assert version_of(live) == 7
            # Nothing else is pending: no duplicate shows up.
            try:
                extra = await asyncio.wait_for(call.read(), 0.5)
            except TimeoutError:
                extra = None
            assert extra is None
            call.cancel()
    finally:
        await watcher.stop()


async def test_watch_of_a_namespace_from_a_token_in_the_middle(promotion_stub, facts: Facts) -> None:
    model = new_model()
    namespace = "/".join(model.split("/")[:2])
    for n in (1, 2, 3):
        await facts.version(model, n)
        await move(promotion_stub, model, n)
    call = promotion_stub.WatchPromotions(
        pb.WatchPromotionsRequest(parent=namespace), metadata=auth("victor")
    )
    items = await read(call, 3)
    call.cancel()
    assert [version_of(i) for i in items] == [1, 2, 3]
    call = promotion_stub.WatchPromotions(
        pb.WatchPromotionsRequest(parent=namespace, resume_token=items[0].resume_token),
        metadata=auth("victor"),
    )
    assert [version_of(i) for i in await read(call, 2)] == [2, 3]
    call.cancel()

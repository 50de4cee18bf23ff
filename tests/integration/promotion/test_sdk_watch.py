"""The blocking SDK's `promotion.watch_promotions`: an iterator over the live stream of
the real promotion service, whose end (a `break`) cancels the stream."""

from __future__ import annotations

import asyncio
import threading
import time

from modelreg.client import Endpoints, Registry
from modelreg.gen.promotion.v1.promotion_pb2_grpc import PromotionServiceStub
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.integration.promotion.conftest import Facts, start_promotion
from tests.integration.promotion.test_promotion_service import new_model
from tests.integration.promotion.test_promotion_watch import move, version_of


def viewer(host: ServiceHost) -> Registry:
    return Registry(Endpoints(promotion=f"127.0.0.1:{host.port}"), bearer_token="t-victor")


async def test_sync_watch_yields_a_promotion_applied_while_it_is_iterated(
    promotion_host: ServiceHost, promotion_stub: PromotionServiceStub, facts: Facts
) -> None:
    model = new_model()
    for n in (1, 2):
        await facts.version(model, n)
    await move(promotion_stub, model, 1)
    loop = asyncio.get_running_loop()

    # The service runs on this test's loop, so the blocking client iterates in a thread.
    def follow() -> list[int]:
        seen = []
        with viewer(promotion_host) as registry:
            for item in registry.promotion.watch_promotions(model):
                assert item.entry.model == model and item.resume_token
                seen.append(version_of(item))
                if len(seen) == 1:  # history read; now a transition happens mid-iteration
                    asyncio.run_coroutine_threadsafe(move(promotion_stub, model, 2), loop).result(10)
                else:
                    break
        return seen

    assert await asyncio.wait_for(asyncio.to_thread(follow), 30) == [1, 2]


async def test_breaking_out_of_the_sync_watch_ends_the_stream(
    promotion_settings: Settings,
    promotion_stub,
    facts: Facts,
) -> None:
    model = new_model()
    await facts.version(model, 1)
    await move(promotion_stub, model, 1)
    # Its own host, so that stopping it shows whether a watch is still being served.
    watcher = await start_promotion(promotion_settings, schema="promotion_sdk_watch")
    broke, stopped = threading.Event(), threading.Event()

    def break_out() -> int:
        with viewer(watcher) as registry:
            for item in registry.promotion.watch_promotions(model):
                first = version_of(item)
                break
            broke.set()
            stopped.wait(60)  # the client stays open: only the break may end the stream
        return first

    follower = asyncio.ensure_future(asyncio.to_thread(break_out))
    try:
        assert await asyncio.to_thread(broke.wait, 30)
        started = time.monotonic()
        # A server waits out its grace period for streams still open; a cancelled one is gone.
        await watcher.stop(grace=60)
        assert time.monotonic() - started < 20
    finally:
        stopped.set()
    assert await follower == 1

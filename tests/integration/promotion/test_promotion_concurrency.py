"""Races between transitions, within one process and across two replicas, and the
atomicity of multi-pointer transitions as concurrent readers see it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from modelreg.gen.promotion.v1 import promotion_pb2_grpc
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.integration.promotion.conftest import Facts, auth, start_promotion
from tests.integration.promotion.test_promotion_service import new_model, pointers, set_policy, transition


@pytest.fixture(scope="module")
async def replica_stub(promotion_settings: Settings, promotion_host: ServiceHost) -> AsyncIterator[object]:
    """A second API process on the same schema, without a projector of its own."""
    replica = await start_promotion(promotion_settings, project=False)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
        yield promotion_pb2_grpc.PromotionServiceStub(channel)
    await replica.stop()


async def test_concurrent_conflicting_transitions_one_wins_the_rest_abort(
    promotion_stub, replica_stub, facts: Facts
) -> None:
    model = new_model()
    for n in range(1, 9):
        await facts.version(model, n)
    etag = (await pointers(promotion_stub, model)).etag
    stubs = [promotion_stub, replica_stub]

    async def attempt(n: int) -> pb.TransitionRequest | grpc.aio.AioRpcError:
        try:
            return await stubs[n % 2].CreateTransitionRequest(
                pb.CreateTransitionRequestRequest(
                    parent=model, transition_request=transition(("STAGING", n), etag=etag)
                ),
                metadata=auth("alice"),
            )
        except grpc.aio.AioRpcError as error:
            return error

    outcomes = await asyncio.gather(*(attempt(n) for n in range(1, 9)))
    winners = [o for o in outcomes if isinstance(o, pb.TransitionRequest)]
    losers = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(winners) == 1, outcomes
    assert {e.code() for e in losers} == {grpc.StatusCode.ABORTED}
    (winner,) = winners
    current = await pointers(promotion_stub, model)
    assert dict(current.stages) == {"STAGING": winner.moves[0].version}
    assert current.etag == 'W/"1"'

    # Retryable: read the pointers again and the same request goes through.
    loser_version = next(n for n in range(1, 9) if n != winner.moves[0].version)
    retried = await replica_stub.CreateTransitionRequest(
        pb.CreateTransitionRequestRequest(
            parent=model, transition_request=transition(("STAGING", loser_version), etag=current.etag)
        ),
        metadata=auth("alice"),
    )
    assert retried.state == pb.TransitionRequest.STATE_APPLIED
    assert dict((await pointers(promotion_stub, model)).stages) == {"STAGING": loser_version}


async def test_concurrent_approvals_apply_once(promotion_stub, replica_stub, facts: Facts) -> None:
    model = new_model()
    await facts.version(model, 1)
    await set_policy(promotion_stub, model, required_approvals=2)
    created = await promotion_stub.CreateTransitionRequest(
        pb.CreateTransitionRequestRequest(parent=model, transition_request=transition(("PRODUCTION", 1))),
        metadata=auth("alice"),
    )
    results = await asyncio.gather(
        *(
            stub.ApproveTransitionRequest(
                pb.ApproveTransitionRequestRequest(name=created.name), metadata=auth(who)
            )
            for stub, who in [(promotion_stub, "bob"), (replica_stub, "carol"), (promotion_stub, "dave")]
        ),
        return_exceptions=True,
    )
    applied = [r for r in results if isinstance(r, pb.TransitionRequest) and r.state == r.STATE_APPLIED]
    assert len(applied) == 1
    # The third approval came after the request was applied: refused, not counted.
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert all(e.code() == grpc.StatusCode.FAILED_PRECONDITION for e in refused)
    assert len(applied[0].approvals) == 2
    history = await promotion_stub.ListPointerHistory(
        pb.ListPointerHistoryRequest(model=model), metadata=auth("victor")
    )
    assert len(history.entries) == 1


async def test_multi_pointer_transitions_are_never_seen_half_done(promotion_stub, facts: Facts) -> None:
    model = new_model()
    for n in range(1, 5):
        await facts.version(model, n)
    await set_policy(promotion_stub, model, protected=["nothing-is-protected"])
    configs = [
        ({"STAGING": 1}, {"champion": 2, "challenger": 3}, {2: 90, 3: 10}),
        ({"STAGING": 4}, {"champion": 3, "challenger": 2}, {3: 50, 2: 50}),
    ]

    def canonical(stages: dict, aliases: dict, split: dict) -> tuple[object, ...]:
        return tuple(tuple(sorted(m.items())) for m in (stages, aliases, split))

    def seen(p: pb.Pointers) -> tuple[object, ...]:
        split = {w.version: w.percent for d in p.deployments for w in d.weights}
        return canonical(dict(p.stages), dict(p.aliases), split)

    allowed = [canonical({}, {}, {})] + [canonical(*c) for c in configs]
    stop = asyncio.Event()
    observations: list[tuple[object, ...]] = []

    async def reader() -> None:
        while not stop.is_set():
            observations.append(seen(await pointers(promotion_stub, model)))

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    try:
        for i in range(16):
            stages, aliases, split = configs[i % 2]
            moves = [*stages.items(), *aliases.items()]
            await promotion_stub.CreateTransitionRequest(
                pb.CreateTransitionRequestRequest(
                    parent=model, transition_request=transition(*moves, deployments={"prod": split})
                ),
                metadata=auth("alice"),
            )
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert len(observations) > 16
    assert all(o in allowed for o in observations), [o for o in observations if o not in allowed][:3]
    # Both configurations were actually observed, so the check had something to bite on.
    assert set(observations) >= set(allowed[1:])

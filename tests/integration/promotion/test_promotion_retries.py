"""A retried decision (approve, reject, cancel, rollback) with the same request_id gets the original
answer: after the original was applied, while it is still in flight in the same process, and while it
is in flight on another replica. The log holds one accepted effect per request_id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from modelreg.gen.promotion.v1 import promotion_pb2_grpc
from modelreg.runtime.settings import Settings
from tests.helpers import count_rows
from tests.integration.promotion.conftest import Facts, auth, start_promotion
from tests.integration.promotion.test_promotion_service import new_model, request

State = pb.TransitionRequest.State

Decision = Callable[[Any, str, str], Any]
"""(stub, transition request name, request_id) -> the pending call."""


def approve(stub: Any, name: str, request_id: str) -> Any:
    return stub.ApproveTransitionRequest(
        pb.ApproveTransitionRequestRequest(name=name, comment="ok", request_id=request_id),
        metadata=auth("bob"),
    )


def reject(stub: Any, name: str, request_id: str) -> Any:
    return stub.RejectTransitionRequest(
        pb.RejectTransitionRequestRequest(name=name, comment="no", request_id=request_id),
        metadata=auth("bob"),
    )


def cancel(stub: Any, name: str, request_id: str) -> Any:
    return stub.CancelTransitionRequest(
        pb.CancelTransitionRequestRequest(name=name, comment="oops", request_id=request_id),
        metadata=auth("alice"),
    )


DECISIONS = {
    "approve": (approve, State.STATE_APPLIED),
    "reject": (reject, State.STATE_REJECTED),
    "cancel": (cancel, State.STATE_CANCELLED),
}


async def accepted_with(settings: Settings, model: str, request_id: str) -> int:
    return await count_rows(
        settings.pg_dsn,
        "SELECT count(*) FROM promotion.event_outcomes WHERE stream = $1 AND request_id = $2 "
        "AND verdict = 'accepted'",
        model,
        request_id,
    )


async def pending_request(promotion_stub: Any, facts: Facts) -> tuple[str, str]:
    model = new_model()
    await facts.version(model, 1)
    created = await request(promotion_stub, model, ("PRODUCTION", 1))
    assert created.state == State.STATE_PENDING
    return model, created.name


def same_answer(a: pb.TransitionRequest, b: pb.TransitionRequest) -> None:
    assert (a.name, a.state, a.decided_by, a.decision_comment) == (
        b.name,
        b.state,
        b.decided_by,
        b.decision_comment,
    )


@pytest.mark.parametrize("kind", sorted(DECISIONS))
async def test_a_retry_after_the_decision_was_applied_gets_the_original(
    kind: str, promotion_stub: Any, facts: Facts, promotion_settings: Settings
) -> None:
    decide, state = DECISIONS[kind]
    model, name = await pending_request(promotion_stub, facts)
    request_id = f"retry-{uuid.uuid4()}"
    first = await decide(promotion_stub, name, request_id)
    assert first.state == state
    again = await decide(promotion_stub, name, request_id)
    same_answer(first, again)
    assert await accepted_with(promotion_settings, model, request_id) == 1
    # A new request_id is a new command: the request is decided, so it is refused.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await decide(promotion_stub, name, f"other-{uuid.uuid4()}")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("kind", sorted(DECISIONS))
async def test_concurrent_calls_with_one_request_id_get_one_answer_and_one_effect(
    kind: str, promotion_stub: Any, facts: Facts, promotion_settings: Settings
) -> None:
    decide, state = DECISIONS[kind]
    model, name = await pending_request(promotion_stub, facts)
    request_id = f"race-{uuid.uuid4()}"
    answers = await asyncio.gather(*(decide(promotion_stub, name, request_id) for _ in range(4)))
    for answer in answers:
        assert answer.state == state
        same_answer(answers[0], answer)
    assert await accepted_with(promotion_settings, model, request_id) == 1


@pytest.fixture
async def second_replica(promotion_settings: Settings, promotion_host: Any) -> AsyncIterator[Any]:
    """Another promotion process on the same schema and topic, with no projector of its own."""
    host = await start_promotion(promotion_settings, project=False)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            yield promotion_pb2_grpc.PromotionServiceStub(channel)
    finally:
        await host.stop()


async def test_a_retry_on_another_replica_while_the_original_is_in_flight_gets_the_original(
    promotion_stub: Any, second_replica: Any, facts: Facts, promotion_settings: Settings
) -> None:
    for _ in range(3):
        model, name = await pending_request(promotion_stub, facts)
        request_id = f"replica-{uuid.uuid4()}"
        answers = await asyncio.gather(
            approve(promotion_stub, name, request_id),
            approve(second_replica, name, request_id),
            approve(promotion_stub, name, request_id),
            approve(second_replica, name, request_id),
        )
        for answer in answers:
            assert answer.state == State.STATE_APPLIED
            same_answer(answers[0], answer)
        assert await accepted_with(promotion_settings, model, request_id) == 1

"""ListTransitionRequests, ListPointerHistory and ListAccessDenials keep the paging contract
(tests/integration/paging.py)."""

from __future__ import annotations

from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from tests.integration.paging import (
    Lister,
    assert_every_item_once_in_order,
    assert_garbled_tokens_rejected,
    assert_inserts_between_pages_skip_and_repeat_nothing,
    assert_token_bound_to_its_query,
)
from tests.integration.promotion.conftest import Facts, auth
from tests.integration.promotion.test_promotion_service import new_model, request, rpc_error, versions

State = pb.TransitionRequest.State


def requests(
    stub, model: str, state: pb.TransitionRequest.State.ValueType = State.STATE_UNSPECIFIED, filter: str = ""
) -> Lister:
    async def lister(page_size: int, page_token: str) -> tuple[list[str], str]:
        page = await stub.ListTransitionRequests(
            pb.ListTransitionRequestsRequest(
                parent=model,
                state=state,
                filter=filter,
                page_size=page_size,
                page_token=page_token,
            ),
            metadata=auth("victor"),
        )
        return [r.name for r in page.transition_requests], page.next_page_token

    return lister


def history(stub, model: str, pointer: str = "", filter: str = "") -> Lister:
    async def lister(page_size: int, page_token: str) -> tuple[list[str], str]:
        page = await stub.ListPointerHistory(
            pb.ListPointerHistoryRequest(
                model=model, pointer=pointer, filter=filter, page_size=page_size, page_token=page_token
            ),
            metadata=auth("victor"),
        )
        return [e.transition_request for e in page.entries], page.next_page_token

    return lister


def denials(stub, namespace: str, filter: str = "") -> Lister:
    async def lister(page_size: int, page_token: str) -> tuple[list[str], str]:
        page = await stub.ListAccessDenials(
            pb.ListAccessDenialsRequest(
                parent=f"namespaces/{namespace}", filter=filter, page_size=page_size, page_token=page_token
            ),
            metadata=auth("root"),
        )
        return [d.resource for d in page.denials], page.next_page_token

    return lister


async def test_list_transition_requests_pages(promotion_stub, facts: Facts) -> None:
    model, other = new_model(), new_model()
    await versions(facts, model, 1, 2, 3)
    await versions(facts, other, 1)
    names = []
    for i in range(7):  # PRODUCTION is protected by the default policy: these stay pending
        names.append((await request(promotion_stub, model, ("PRODUCTION", 1 + i % 3))).name)
    await request(promotion_stub, other, ("PRODUCTION", 1))
    applied = (await request(promotion_stub, model, ("STAGING", 1))).name
    pending = requests(promotion_stub, model, State.STATE_PENDING)
    await assert_every_item_once_in_order(pending, names[::-1])
    await assert_every_item_once_in_order(requests(promotion_stub, model), [applied, *names[::-1]])
    await assert_token_bound_to_its_query(
        pending,
        [
            requests(promotion_stub, model),
            requests(promotion_stub, model, State.STATE_APPLIED),
            requests(promotion_stub, other, State.STATE_PENDING),
            requests(promotion_stub, model, State.STATE_PENDING, filter='requested_by = "alice"'),
        ],
    )
    by_alice = requests(promotion_stub, model, filter='state = "PENDING" AND requested_by = "alice"')
    await assert_every_item_once_in_order(by_alice, names[::-1])
    await assert_token_bound_to_its_query(
        by_alice, [requests(promotion_stub, model, filter='state = "PENDING" AND requested_by = "bob"')]
    )
    await assert_garbled_tokens_rejected(pending)

    async def insert() -> None:
        for _ in range(3):
            await request(promotion_stub, model, ("PRODUCTION", 2))

    await assert_inserts_between_pages_skip_and_repeat_nothing(pending, names[::-1], insert)


async def test_list_pointer_history_pages(promotion_stub, facts: Facts) -> None:
    model, other = new_model(), new_model()
    await versions(facts, model, 1, 2, 3)
    await versions(facts, other, 1, 2)
    moves = []
    for i in range(7):  # STAGING and the alias are unprotected: each request applies at once
        pointer = "STAGING" if i % 2 else "champion"
        moves.append((pointer, (await request(promotion_stub, model, (pointer, 1 + i % 3))).name))
    await request(promotion_stub, other, ("STAGING", 1))
    await request(promotion_stub, other, ("STAGING", 2))
    newest_first = [name for _, name in moves[::-1]]
    staging = [name for pointer, name in moves[::-1] if pointer == "STAGING"]
    everything = history(promotion_stub, model)
    await assert_every_item_once_in_order(everything, newest_first)
    await assert_every_item_once_in_order(history(promotion_stub, model, "STAGING"), staging)
    await assert_token_bound_to_its_query(
        everything,
        [
            history(promotion_stub, model, "STAGING"),
            history(promotion_stub, other),
            history(promotion_stub, model, filter='pointer = "STAGING"'),
        ],
    )
    filtered = history(promotion_stub, model, filter='pointer = "STAGING"')
    await assert_every_item_once_in_order(filtered, staging)
    await assert_token_bound_to_its_query(
        filtered, [history(promotion_stub, model, filter='pointer = "champion"')]
    )
    await assert_garbled_tokens_rejected(everything)

    async def insert() -> None:
        for version in (1, 2):
            await request(promotion_stub, model, ("STAGING", version))

    await assert_inserts_between_pages_skip_and_repeat_nothing(everything, newest_first, insert)


async def test_list_access_denials_pages(promotion_stub, facts: Facts) -> None:
    models = [new_model() for _ in range(6)]
    namespace = models[0].split("/")[1]
    models = [f"namespaces/{namespace}/models/m{i}" for i in range(len(models))]
    other = new_model()

    async def deny(model: str) -> None:  # a viewer may not request a transition
        await rpc_error(request(promotion_stub, model, ("STAGING", 1), who="victor"))

    for model in [*models, other]:
        await versions(facts, model, 1)
        await deny(model)
    listing = denials(promotion_stub, namespace)
    await assert_every_item_once_in_order(listing, models[::-1])
    await assert_token_bound_to_its_query(
        listing,
        [
            denials(promotion_stub, other.split("/")[1]),
            denials(promotion_stub, namespace, 'principal = "victor"'),
        ],
    )
    by_victor = denials(
        promotion_stub, namespace, 'principal = "victor" AND action = "CreateTransitionRequest"'
    )
    await assert_every_item_once_in_order(by_victor, models[::-1])
    await assert_token_bound_to_its_query(
        by_victor, [denials(promotion_stub, namespace, 'principal = "bob"')]
    )
    await assert_garbled_tokens_rejected(listing)

    async def insert() -> None:
        for i in range(2):
            await deny(f"namespaces/{namespace}/models/new{i}")

    await assert_inserts_between_pages_skip_and_repeat_nothing(listing, models[::-1], insert)

"""ListModelVersions keeps the paging contract (tests/integration/paging.py)."""

from __future__ import annotations

from typing import Any

from modelreg.gen.versioning.v1 import versioning_pb2 as pb
from tests.integration.paging import (
    Lister,
    assert_every_item_once_in_order,
    assert_garbled_tokens_rejected,
    assert_inserts_between_pages_skip_and_repeat_nothing,
    assert_token_bound_to_its_query,
)
from tests.integration.versioning.helpers import create_version


def versions(stub, model: str, **query: Any) -> Lister:
    async def lister(page_size: int, page_token: str) -> tuple[list[str], str]:
        page = await stub.ListModelVersions(
            pb.ListModelVersionsRequest(parent=model, page_size=page_size, page_token=page_token, **query)
        )
        return [v.name for v in page.model_versions], page.next_page_token

    return lister


async def test_list_model_versions_pages(versioning_stub, create_model) -> None:
    model, token = await create_model()
    other, other_token = await create_model()
    for i in range(7):
        await create_version(versioning_stub, model, token, tags={"team": "a" if i % 3 else "b"})
    await create_version(versioning_stub, other, other_token)
    newest_first = [f"{model}/versions/{n}" for n in range(7, 0, -1)]
    team_a = [f"{model}/versions/{n}" for n in (6, 5, 3, 2)]

    everything = versions(versioning_stub, model)
    of_team_a = versions(versioning_stub, model, filter='tags.team = "a"')
    await assert_every_item_once_in_order(everything, newest_first)
    await assert_every_item_once_in_order(of_team_a, team_a)
    await assert_token_bound_to_its_query(
        of_team_a,
        [
            everything,
            versions(versioning_stub, model, filter='tags.team = "b"'),
            versions(versioning_stub, model, filter='tags.team = "a"', show_deleted=True),
            versions(versioning_stub, other, filter='tags.team = "a"'),
        ],
    )
    await assert_garbled_tokens_rejected(everything)

    async def insert() -> None:
        for _ in range(3):
            await create_version(versioning_stub, model, token, tags={"team": "a"})

    await assert_inserts_between_pages_skip_and_repeat_nothing(everything, newest_first, insert)

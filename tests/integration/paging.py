"""The paging contract every List call keeps, checked against the real services.

A service's test supplies listers: `(page_size, page_token) -> (keys of the page's items,
next_page_token)` calling its real gRPC method, one per query.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence

import grpc
import pytest

from tests.helpers import violations

Lister = Callable[[int, str], Awaitable[tuple[list[str], str]]]
PAGE_SIZES = (1, 2, 3, 1000)


async def walk(lister: Lister, page_size: int, token: str = "") -> list[list[str]]:
    pages: list[list[str]] = []
    while True:
        items, token = await lister(page_size, token)
        assert len(items) <= page_size
        pages.append(items)
        if not token:
            return pages
        assert items, "a page with a next token is never empty"


async def assert_every_item_once_in_order(lister: Lister, expected: Sequence[str]) -> None:
    for size in PAGE_SIZES:
        pages = await walk(lister, size)
        assert [item for page in pages for item in page] == list(expected), f"page_size={size}"
        assert all(len(page) == size for page in pages[:-1]), f"page_size={size}"


async def assert_invalid(pending: Awaitable[object], field: str = "page_token") -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await pending
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    assert violations(error.value) == [field]


async def assert_token_bound_to_its_query(lister: Lister, others: Sequence[Lister]) -> None:
    """A token continues only the query that issued it; page_size may change."""
    _, token = await lister(1, "")
    assert token
    await lister(2, token)
    for other in others:
        await assert_invalid(other(1, token))


def _tampered(token: str) -> list[str]:
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    keys = data["k"]
    swapped = [7 if isinstance(k, str) else "7" for k in keys]
    forged = [
        {**data, "k": swapped},
        {**data, "k": [*keys, 1]},
        {**data, "k": [1 << 70 if isinstance(k, int) else "x\x00" for k in keys]},
        {**data, "k": None},
    ]
    return [base64.urlsafe_b64encode(json.dumps(f).encode()).decode() for f in forged]


async def assert_garbled_tokens_rejected(lister: Lister) -> None:
    _, token = await lister(1, "")
    assert token
    for bad in ["garbage!", "e30", "%%%", token[: len(token) // 2], token[::-1], *_tampered(token)]:
        await assert_invalid(lister(1, bad))


async def assert_inserts_between_pages_skip_and_repeat_nothing(
    lister: Lister, expected: Sequence[str], insert: Callable[[], Awaitable[None]]
) -> None:
    """Keyset paging: items added between pages shift nothing that was already there."""
    first, token = await lister(2, "")
    assert token
    await insert()
    served = first + [item for page in await walk(lister, 2, token) for item in page]
    assert len(served) == len(set(served))
    assert [item for item in served if item in set(expected)] == list(expected)

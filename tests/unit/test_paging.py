"""The paging kernel: page sizes, opaque keyset tokens bound to their query, the page helper."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelreg.errors import InvalidArgument
from modelreg.paging import MAX_PAGE_SIZE, page_limit, page_request

T0 = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def violation(error: pytest.ExceptionInfo[InvalidArgument]) -> tuple[str, str]:
    (v,) = error.value.violations
    return v.field, v.description


def test_page_size_defaults_caps_and_rejects_negatives() -> None:
    assert page_limit(0) == 50
    assert page_limit(0, default=500) == 500
    assert page_limit(7) == 7
    assert page_limit(10**6) == MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument) as error:
        page_limit(-1)
    assert violation(error) == ("page_size", "must not be negative")


def test_a_token_continues_its_listing_with_typed_keys() -> None:
    first = page_request(2, "", [datetime, int, str], parent="p", filter="x")
    rows = [(T0, 7, "a"), (T0, 8, "b"), (T0, 9, "c")]
    page = first.page(rows, lambda row: row)
    assert page.items == rows[:2]
    second = page_request(5, page.next_page_token, [datetime, int, str], parent="p", filter="x")
    assert second.after == (T0, 8, "b")
    assert second.limit == 5 and second.fetch == 6


def test_the_last_page_has_no_token() -> None:
    paging = page_request(3, "", [int], parent="p")
    assert paging.page([1, 2, 3], lambda n: (n,)).next_page_token == ""
    assert paging.page([], lambda n: (n,)).items == []


def test_a_token_from_another_query_names_what_may_have_changed() -> None:
    token = (
        page_request(1, "", [str], parent="p", filter="a").page(["x", "y"], lambda s: (s,)).next_page_token
    )
    with pytest.raises(InvalidArgument) as error:
        page_request(1, token, [str], parent="p", filter="b")
    assert violation(error) == ("page_token", "belongs to a different listing (parent or filter changed)")
    with pytest.raises(InvalidArgument) as error:
        page_request(1, token, [str], parent="p", filter="a", order_by="name", show_deleted=False)
    assert violation(error) == (
        "page_token",
        "belongs to a different listing (parent, filter, order_by or show_deleted changed)",
    )


def forge(fingerprint: str, keys: list[object]) -> str:
    raw = json.dumps({"q": fingerprint, "k": keys}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "keys",
    [
        [1],  # wrong type for a str key
        ["a", "b"],  # wrong arity
        [True],
        ["a\x00b"],  # PostgreSQL text cannot hold NUL
    ],
)
def test_tampered_keys_are_invalid_argument(keys: list[object]) -> None:
    fingerprint = page_request(1, "", [str], parent="p").fingerprint
    with pytest.raises(InvalidArgument) as error:
        page_request(1, forge(fingerprint, keys), [str], parent="p")
    assert violation(error) == ("page_token", "is not a token returned by this list")


@pytest.mark.parametrize("keys", [["x"], [1 << 63], [1.5], [True], [None]])
def test_tampered_integer_keys_are_invalid_argument(keys: list[object]) -> None:
    fingerprint = page_request(1, "", [int], parent="p").fingerprint
    with pytest.raises(InvalidArgument, match="not a token"):
        page_request(1, forge(fingerprint, keys), [int], parent="p")


@pytest.mark.parametrize("value", ["yesterday", "2026-03-01T12:00:00", 5])
def test_tampered_time_keys_are_invalid_argument(value: object) -> None:
    fingerprint = page_request(1, "", [datetime], parent="p").fingerprint
    with pytest.raises(InvalidArgument, match="not a token"):
        page_request(1, forge(fingerprint, [value]), [datetime], parent="p")


@given(st.text(max_size=60))
def test_garbage_is_never_anything_but_invalid_argument(token: str) -> None:
    if token:
        with pytest.raises(InvalidArgument) as error:
            page_request(1, token, [int, str], parent="p")
        assert error.value.violations[0].field == "page_token"


@given(st.binary(max_size=60))
def test_garbled_base64_is_invalid_argument(raw: bytes) -> None:
    token = base64.urlsafe_b64encode(raw).decode()
    if token:
        with pytest.raises(InvalidArgument):
            page_request(1, token, [int, str], parent="p")

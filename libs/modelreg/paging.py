"""Paging for every List call: page-size rules and opaque keyset page tokens.

A token holds the sort-key values of the last item served (keyset paging), so
pages stay disjoint and complete while items are added, and a fingerprint of
everything that defines the result set except page_size, so a token cannot
silently continue a different query. Tokens are not secret: a hand-made one
can only start a listing somewhere else in the same result set, and anything
that does not decode to the expected key types is InvalidArgument.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from modelreg.errors import InvalidArgument
from modelreg.limits import MAX_TOKEN_BYTES, loads_token_json

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_BIGINT = 1 << 63

SortValue = str | int | datetime
KeyType = type[str] | type[int] | type[datetime]
Keyset = tuple[SortValue, ...]
"""The sort-key values of the last item served; a listing continues strictly after them."""
T = TypeVar("T")


def page_limit(page_size: int, default: int = DEFAULT_PAGE_SIZE) -> int:
    if page_size < 0:
        raise InvalidArgument.of("page_size", "must not be negative")
    return min(page_size or default, MAX_PAGE_SIZE)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page of one listing: fetch `fetch` rows strictly after `after` in the listing's order."""

    limit: int
    after: Keyset | None
    fingerprint: str

    @property
    def fetch(self) -> int:
        """Rows to ask the store for: one more than the page shows whether another page follows."""
        return self.limit + 1

    def page(self, rows: Sequence[T], key: Callable[[T], Keyset]) -> Page[T]:
        items = list(rows[: self.limit])
        more = len(rows) > self.limit
        return Page(items, encode_token(self.fingerprint, key(items[-1])) if more else "")


def page_request(
    page_size: int,
    page_token: str,
    keys: Sequence[KeyType],
    *,
    default_size: int = DEFAULT_PAGE_SIZE,
    **query: object,
) -> PageRequest:
    """Validates page_size and page_token for the listing that `query` (JSON values) defines.

    `keys` are the types of the sort-key values, in order; the last must make the order total.
    """
    limit = page_limit(page_size, default_size)
    fingerprint = query_fingerprint(**query)
    after = (
        decode_token(page_token, fingerprint, keys, changed=" or ".join(_spoken(list(query))))
        if page_token
        else None
    )
    return PageRequest(limit, after, fingerprint)


def query_fingerprint(**query: object) -> str:
    shape = json.dumps(query, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(shape.encode()).hexdigest()[:16]


def encode_token(fingerprint: str, values: Keyset) -> str:
    encoded = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps({"q": fingerprint, "k": encoded}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, fingerprint: str, keys: Sequence[KeyType], changed: str = "the query") -> Keyset:
    if len(token) > 2 * MAX_TOKEN_BYTES:
        raise _not_a_token()
    try:
        data = loads_token_json(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or not isinstance(data.get("k"), list):
            raise ValueError("not a token")
    except (binascii.Error, ValueError):
        raise _not_a_token() from None
    if data.get("q") != fingerprint:
        raise InvalidArgument.of("page_token", f"belongs to a different listing ({changed} changed)")
    raw = data["k"]
    if len(raw) != len(keys):
        raise _not_a_token()
    return tuple(_typed(value, key) for value, key in zip(raw, keys, strict=True))


def _typed(value: object, key: KeyType) -> SortValue:
    # Checked here so that a hand-made value fails as InvalidArgument, not in the database.
    if key is int and type(value) is int and -_BIGINT <= value < _BIGINT:
        return value
    if key is str and isinstance(value, str):
        return value  # loads_token_json refused control characters and lone surrogates
    if key is datetime and isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
            moment.astimezone(UTC)  # within PostgreSQL's and Python's range
        except (ValueError, OverflowError):
            raise _not_a_token() from None
        if moment.tzinfo is not None:
            return moment
    raise _not_a_token()


def _not_a_token() -> InvalidArgument:
    return InvalidArgument.of("page_token", "is not a token returned by this list")


def _spoken(names: list[str]) -> list[str]:
    """["a", "b", "c"] -> ["a, b", "c"], so joining with " or " reads "a, b or c"."""
    return [", ".join(names[:-1]), names[-1]] if len(names) > 1 else names

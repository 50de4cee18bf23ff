"""The one input policy every service applies: text, names, numbers, counts and tokens.

Every refusal is InvalidArgument naming the field, so a client learns exactly what
to fix, and a refused request never reaches the log. The checks guarantee what
DESIGN rule 11 asks: an accepted value can be stored by every consumer (PostgreSQL
text refuses NUL; bigint and timestamptz have ranges; the broker has a record limit).

Pure: no gRPC, database, Kafka or generated protos (domain code imports it).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sized
from datetime import UTC, datetime
from typing import Any

from modelreg.errors import InvalidArgument

MAX_TEXT_BYTES = 256 * 1024
"""Any string field of any request, unless its own limit is lower."""
MAX_ENTRIES = 10_000
"""Any repeated or map field of any request, unless its own limit is lower."""
MAX_TOKEN_BYTES = 16 * 1024
"""A consistency, resume or page token, before it is decoded."""
MAX_TOKEN_DEPTH = 4
"""JSON nesting inside a token: tokens are at most an object of objects."""
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
MIN_TIMESTAMP_SECONDS = -62135596800
"""0001-01-01T00:00:00Z, the smallest google.protobuf.Timestamp (and Python datetime)."""
MAX_TIMESTAMP_SECONDS = 253402300799
"""9999-12-31T23:59:59Z, the largest."""


# Unicode's Cc (C0 and C1 controls, NUL and DEL) and Cs (lone surrogates, not UTF-8 encodable),
# as regular expressions: a search runs in C, so an 8 MB request costs milliseconds, not seconds.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _bad_char(value: str, multiline: bool) -> tuple[int, str] | None:
    found = (_CONTROL_BUT_LINES if multiline else _CONTROL).search(value)
    return None if found is None else (found.start(), found.group())


def check_text(value: str, field: str, limit: int = MAX_TEXT_BYTES, *, multiline: bool = False) -> str:
    """A UTF-8 string of at most `limit` bytes without NUL or other control characters
    (newline, tab and carriage return too, unless `multiline`)."""
    if not isinstance(value, str):
        raise InvalidArgument.of(field, "must be a string")
    if len(value) > limit:  # cheap first: a character is at least one byte
        raise InvalidArgument.of(field, f"is longer than {limit} bytes")
    bad = _bad_char(value, multiline)
    if bad is not None:
        i, c = bad
        kind = "a lone surrogate" if unicodedata.category(c) == "Cs" else "a control character"
        raise InvalidArgument.of(field, f"contains {kind} (U+{ord(c):04X}) at position {i}")
    size = len(value.encode("utf-8"))
    if size > limit:
        raise InvalidArgument.of(field, f"is {size} bytes, at most {limit} are allowed")
    return value


def check_pattern(value: str, pattern: re.Pattern[str], field: str) -> str:
    """The whole value matches (re.fullmatch: `$` would accept a trailing newline)."""
    if not value:
        raise InvalidArgument.of(field, "is required")
    if pattern.fullmatch(value) is None:
        raise InvalidArgument.of(field, f"{value[:140]!r} must match {pattern.pattern}")
    return value


def check_count(items: Sized, field: str, limit: int = MAX_ENTRIES) -> None:
    if len(items) > limit:
        raise InvalidArgument.of(field, f"has {len(items)} entries, at most {limit} are allowed")


def check_int(value: int, field: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument.of(field, f"must be an integer between {low} and {high}")
    return value


def check_finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise InvalidArgument.of(field, "must be a finite number")
    return value


def parse_decimal(text: str, field: str, low: int = 0, high: int = INT64_MAX) -> int:
    """An integer written in ASCII digits only: str.isdigit() also accepts '١٢' or '²'."""
    if not text or not (text.isascii() and text.isdigit()) or len(text) > len(str(high)):
        raise InvalidArgument.of(field, f"{text[:40]!r} is not a decimal number")
    return check_int(int(text), field, low, high)


def check_timestamp(seconds: int, nanos: int, field: str) -> None:
    """A google.protobuf.Timestamp that converts to a datetime (years 1 to 9999)."""
    if not MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS or not 0 <= nanos < 1_000_000_000:
        raise InvalidArgument.of(field, "is out of range (0001-01-01 to 9999-12-31 UTC, nanos 0-999999999)")


def check_datetime(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidArgument.of(field, "must carry a time zone")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise InvalidArgument.of(field, "is out of range") from None
    return value


# Tokens ---------------------------------------------------------------------


class MalformedToken(ValueError):
    """A token that is too large, too deep or not plain JSON (its caller names the field)."""


def _depth(raw: str) -> int:
    """The bracket nesting of a JSON text, counted without recursion (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in raw:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise MalformedToken(f"{name} is not a number a token holds")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19:
        raise MalformedToken("integer out of range")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise MalformedToken("integer out of range")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedToken("number out of range")
    return value


def loads_token_json(raw: bytes, max_bytes: int = MAX_TOKEN_BYTES, max_depth: int = MAX_TOKEN_DEPTH) -> Any:
    """JSON from an untrusted token: bounded size and depth, 64-bit integers, finite numbers,
    valid UTF-8 without lone surrogates or control characters in strings. MalformedToken otherwise."""
    if len(raw) > max_bytes:
        raise MalformedToken("token too large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedToken("not UTF-8") from None
    if _depth(text) > max_depth:
        raise MalformedToken("token nested too deep")
    try:
        data = json.loads(
            text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
        )
    except (ValueError, RecursionError) as exc:
        raise MalformedToken(str(exc)) from None
    _check_strings(data)
    return data


def _check_strings(data: Any) -> None:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _bad_char(item, multiline=False) is not None:
                raise MalformedToken("control character in a token")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)

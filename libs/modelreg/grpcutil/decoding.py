"""Request decoding for the one interceptor: undecodable bytes and out-of-policy fields
become INVALID_ARGUMENT before any handler runs, on every method, streaming included.

The request deserializer of every method is wrapped: bytes that do not parse as the
method's message (truncated, invalid UTF-8 in a string, nesting past protobuf's limit)
and messages with a field outside the policy of modelreg.limits (control characters,
oversized text, too many entries, an out-of-range Timestamp or Duration, a uint64 past
int64) come out as a `Refused` value instead of raising inside gRPC (which would answer
UNKNOWN or INTERNAL). The interceptor raises the refusal's InvalidArgument, so a refused
request never reaches a use case and appends nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from modelreg.errors import InvalidArgument
from modelreg.limits import (
    INT64_MAX,
    check_count,
    check_text,
    check_timestamp,
)

MULTILINE_FIELDS = frozenset(
    {
        "description",
        "annotations",
        "reason",
        "comment",
        "decision_comment",
        "rollback_reason",
        "state_reason",
        "schema",
        "filter",
        "order_by",
    }
)
"""Free-text fields whose documentation allows newline, tab and carriage return.
Map values (tags, params, attributes) may hold them too (MLflow tag values are markdown);
map keys and every other string may not."""

MAX_DURATION_SECONDS = 315_576_000_000

_UINT64 = (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64)


class Refused:
    """What the wrapped deserializer returns for a request that must not reach a handler."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


def checking(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserializer`, returning Refused instead of raising, and checking every field."""
    if deserializer is None:
        return None
    inner = deserializer

    def deserialize(data: bytes) -> Any:
        try:
            message = inner(data)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the client's bytes
            return Refused(
                InvalidArgument.of(
                    "request", f"is not a valid encoding of the method's message ({type(exc).__name__})"
                )
            )
        if isinstance(message, Message):
            try:
                check_message(message)
            except InvalidArgument as error:
                return Refused(error)
        return message

    return deserialize


def raise_if_refused(request: object) -> None:
    if isinstance(request, Refused):
        raise request.error


async def checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A client stream whose first refused message raises its InvalidArgument."""
    async for request in requests:
        raise_if_refused(request)
        yield request


def check_message(message: Message, prefix: str = "") -> None:
    """Every set field of `message`, recursively, against the policy; errors name the field path."""
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.is_repeated:
            check_count(value, path)
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                value_field = field.message_type.fields_by_name["value"]
                for key, item in value.items():
                    where = f"{path}[{key!r}]" if isinstance(key, str) else f"{path}[{key}]"
                    if isinstance(key, str):
                        check_text(key, f"{path} key {key[:60]!r}")
                    _check_value(value_field, item, where, multiline=True)
            else:
                for i, item in enumerate(value):
                    _check_value(field, item, f"{path}[{i}]", multiline=field.name in MULTILINE_FIELDS)
        else:
            _check_value(field, value, path, multiline=field.name in MULTILINE_FIELDS)


def _check_value(field: FieldDescriptor, value: Any, path: str, *, multiline: bool) -> None:
    if field.type == FieldDescriptor.TYPE_STRING:
        check_text(value, path, multiline=multiline)
    elif field.type in _UINT64:
        if value > INT64_MAX:
            raise InvalidArgument.of(path, f"must be at most {INT64_MAX}")
    elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        full_name = field.message_type.full_name
        if full_name == "google.protobuf.Timestamp":
            check_timestamp(value.seconds, value.nanos, path)
        elif full_name == "google.protobuf.Duration":
            if not -MAX_DURATION_SECONDS <= value.seconds <= MAX_DURATION_SECONDS or not (
                -999_999_999 <= value.nanos <= 999_999_999
            ):
                raise InvalidArgument.of(path, "is out of range")
        else:
            check_message(value, f"{path}.")

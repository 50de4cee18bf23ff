"""The input limits every catalog field obeys (resource names are modelreg.names)."""

from __future__ import annotations

from modelreg.errors import InvalidArgument
from modelreg.names import ID_PATTERN

MAX_DESCRIPTION_BYTES = 64 * 1024
MAX_TAGS = 64
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_BYTES = 1024
MAX_ANNOTATIONS_BYTES = 64 * 1024
MAX_PROPERTIES = 64
MAX_PROPERTY_STRING_BYTES = 1024
MAX_OWNERS = 32
MAX_OWNER_CHARS = 256
MAX_REASON_BYTES = 1024


def check_description(description: str, field: str, limit: int = MAX_DESCRIPTION_BYTES) -> str:
    size = len(description.encode())
    if size > limit:
        raise InvalidArgument.of(field, f"is {size} bytes, at most {limit} are allowed")
    return description


def check_key(key: str, field: str) -> str:
    if not key or len(key) > MAX_TAG_KEY_CHARS or not ID_PATTERN.match(key):
        raise InvalidArgument.of(f"{field}[{key[:140]!r}]", f"key must match {ID_PATTERN.pattern}")
    return key


def check_owners(owners: tuple[str, ...], field: str) -> tuple[str, ...]:
    if len(owners) > MAX_OWNERS:
        raise InvalidArgument.of(field, f"has {len(owners)} entries, at most {MAX_OWNERS} are allowed")
    for i, owner in enumerate(owners):
        # Principals are opaque ids (users, groups, service accounts), never blank or padded.
        if (
            not owner
            or len(owner) > MAX_OWNER_CHARS
            or owner != owner.strip()
            or any(c.isspace() for c in owner)
        ):
            raise InvalidArgument.of(
                f"{field}[{i}]", f"must be 1-{MAX_OWNER_CHARS} characters without whitespace"
            )
    if len(set(owners)) != len(owners):
        raise InvalidArgument.of(field, "lists a principal twice")
    return owners


def check_tags(tags: dict[str, str], field: str) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise InvalidArgument.of(field, f"has {len(tags)} entries, at most {MAX_TAGS} are allowed")
    for key, value in tags.items():
        check_key(key, field)
        if len(value.encode()) > MAX_TAG_VALUE_BYTES:
            raise InvalidArgument.of(f"{field}[{key!r}]", f"value is longer than {MAX_TAG_VALUE_BYTES} bytes")
    return dict(tags)

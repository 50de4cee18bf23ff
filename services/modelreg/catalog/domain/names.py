"""Resource names and the input limits every catalog field obeys."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelreg.errors import InvalidArgument

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
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


@dataclass(frozen=True, slots=True, order=True)
class ModelName:
    namespace: str
    model: str

    def __str__(self) -> str:
        return f"namespaces/{self.namespace}/models/{self.model}"

    @property
    def parent(self) -> str:
        return f"namespaces/{self.namespace}"


def check_id(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument.of(field, "is required")
    if not ID_PATTERN.match(value):
        raise InvalidArgument.of(field, f"{value[:140]!r} must match {ID_PATTERN.pattern}")
    return value


def parse_parent(parent: str, field: str = "parent") -> str:
    """`namespaces/{ns}` -> ns."""
    if not parent:
        raise InvalidArgument.of(field, "is required")
    parts = parent.split("/")
    if len(parts) != 2 or parts[0] != "namespaces":
        raise InvalidArgument.of(field, f"{parent[:200]!r} is not of the form namespaces/{{namespace}}")
    return check_id(parts[1], field)


def parse_model_name(name: str, field: str = "name") -> ModelName:
    if not name:
        raise InvalidArgument.of(field, "is required")
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "namespaces" or parts[2] != "models":
        raise InvalidArgument.of(
            field, f"{name[:300]!r} is not of the form namespaces/{{namespace}}/models/{{model}}"
        )
    return ModelName(check_id(parts[1], field), check_id(parts[3], field))


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

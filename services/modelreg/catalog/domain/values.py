"""The catalog's value objects, the limits every field obeys, and their checks.

Resource names are modelreg.names; signatures are modelreg.signatures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from modelreg.errors import InvalidArgument
from modelreg.limits import check_text
from modelreg.names import ID_PATTERN
from modelreg.signatures import Signature, check_signature

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
MAX_DISPLAY_NAME_CHARS = 256


def check_description(description: str, field: str, limit: int = MAX_DESCRIPTION_BYTES) -> str:
    """Free text (newline and tab allowed), no NUL or other control characters: modelreg.limits."""
    return check_text(description, field, limit, multiline=True)


def check_key(key: str, field: str) -> str:
    if not key or len(key) > MAX_TAG_KEY_CHARS or not ID_PATTERN.fullmatch(key):
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
            or any(c.isspace() or not c.isprintable() for c in owner)
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
        check_text(value, f"{field}[{key!r}]", MAX_TAG_VALUE_BYTES, multiline=True)
    return dict(tags)


def check_display_name(display_name: str, field: str) -> str:
    """Free-form but one line: no control characters, no padding, at most 256 characters."""
    check_text(display_name, field, MAX_DISPLAY_NAME_CHARS * 4, multiline=False)
    if len(display_name) > MAX_DISPLAY_NAME_CHARS:
        raise InvalidArgument.of(
            field, f"is {len(display_name)} characters, at most {MAX_DISPLAY_NAME_CHARS}"
        )
    if display_name != display_name.strip():
        raise InvalidArgument.of(field, "has leading or trailing whitespace")
    return display_name


class ModelState(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DELETED = "deleted"


class PropertyKind(StrEnum):
    STRING = "string"
    INT = "int"
    DOUBLE = "double"
    BOOL = "bool"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True, slots=True)
class Property:
    """A typed value; the kind is explicit because Python's bool is an int."""

    kind: PropertyKind
    value: str | int | float | bool | datetime


@dataclass(frozen=True, slots=True)
class ModelFields:
    """The client-writable part of a model: what Create sets and Update changes."""

    description: str = ""
    annotations: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Property] = field(default_factory=dict)
    signature: Signature | None = None
    owners: tuple[str, ...] = ()
    display_name: str = ""
    """Unique among the namespace's live models when not empty (checked by the use case)."""


UPDATABLE_FIELDS = ("description", "annotations", "tags", "properties", "signature", "owners", "display_name")
MAP_FIELDS = ("tags", "properties")
OUTPUT_ONLY_FIELDS = ("name", "state", "create_time", "update_time", "created_by", "updated_by", "etag")


def check_fields(values: ModelFields, prefix: str, only: tuple[str, ...] = UPDATABLE_FIELDS) -> None:
    """Every limit on the writable fields named in `only`; errors name `prefix.<field>`."""
    if "description" in only:
        check_description(values.description, f"{prefix}.description")
    if "annotations" in only:
        check_description(values.annotations, f"{prefix}.annotations", MAX_ANNOTATIONS_BYTES)
    if "tags" in only:
        check_tags(values.tags, f"{prefix}.tags")
    if "properties" in only:
        check_properties(values.properties, f"{prefix}.properties")
    if "signature" in only and values.signature is not None:
        check_signature(values.signature, f"{prefix}.signature")
    if "owners" in only:
        check_owners(values.owners, f"{prefix}.owners")
    if "display_name" in only:
        check_display_name(values.display_name, f"{prefix}.display_name")


def check_properties(properties: dict[str, Property], field: str) -> None:
    if len(properties) > MAX_PROPERTIES:
        raise InvalidArgument.of(
            field, f"has {len(properties)} entries, at most {MAX_PROPERTIES} are allowed"
        )
    for key, prop in properties.items():
        check_key(key, field)
        where = f"{field}[{key!r}]"
        match prop.kind:
            case PropertyKind.STRING:
                assert isinstance(prop.value, str)
                check_text(prop.value, where, MAX_PROPERTY_STRING_BYTES, multiline=True)
            case PropertyKind.DOUBLE:
                # NaN has no order and would make every comparison in a filter lie.
                assert isinstance(prop.value, float)
                if not math.isfinite(prop.value):
                    raise InvalidArgument.of(where, "must be a finite number")

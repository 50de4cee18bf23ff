"""The search language of ListRegisteredModels: the filter's field schema and order_by.

The filter syntax, its typed AST and its SQL compiler are the shared
`modelreg.filtering`; this module says which fields a model search may name.
Properties are stored as `{"key": {"type": ..., "s"|"n"|"b"|"t": value}}`, so
a literal compares only with properties of its own type.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from modelreg.errors import InvalidArgument
from modelreg.filtering import FieldSpec, FieldType, Node, Schema, parse
from modelreg.names import ID_PATTERN

FILTER = Schema(
    (
        FieldSpec("name", FieldType.STRING, prefix_index=True),
        FieldSpec("display_name", FieldType.STRING),
        FieldSpec(
            "state",
            FieldType.ENUM,
            values={"ACTIVE": "active", "ARCHIVED": "archived", "DELETED": "deleted"},
            enum_prefix="STATE_",
        ),
        FieldSpec("create_time", FieldType.TIMESTAMP),
        FieldSpec("update_time", FieldType.TIMESTAMP),
        FieldSpec("tags", FieldType.STRING_MAP, key_pattern=ID_PATTERN),
        FieldSpec("properties", FieldType.TYPED_MAP, key_pattern=ID_PATTERN),
        FieldSpec("owners", FieldType.STRING_LIST),
        FieldSpec("text", FieldType.FULL_TEXT),
    ),
    max_chars=4096,
    max_depth=32,
)


def parse_filter(text: str) -> Node | None:
    """The AST of a search filter, or None for an empty one; raises InvalidArgument on `filter`."""
    return parse(text, FILTER)


# order_by -------------------------------------------------------------------


class SortKey(StrEnum):
    NAME = "name"
    DISPLAY_NAME = "display_name"
    CREATE_TIME = "create_time"
    UPDATE_TIME = "update_time"


@dataclass(frozen=True, slots=True)
class Ordering:
    keys: tuple[tuple[SortKey, bool], ...]
    """(key, descending), always ending with name, so the order is total."""

    def normalized(self) -> str:
        return ",".join(f"{k.value} {'desc' if d else 'asc'}" for k, d in self.keys)


def parse_order_by(text: str) -> Ordering:
    """AIP-132: `key [asc|desc], ...`; ties are broken by name in the last key's direction."""
    keys: list[tuple[SortKey, bool]] = []
    if text.strip():
        for part in text.split(","):
            words = part.split()
            if not words or len(words) > 2 or words[0] not in SortKey.__members__.values():
                raise InvalidArgument.of(
                    "order_by",
                    f"{part.strip()[:100]!r}: expected name, display_name, create_time or update_time",
                )
            if len(words) == 2 and words[1].lower() not in ("asc", "desc"):
                raise InvalidArgument.of("order_by", f"{part.strip()[:100]!r}: expected asc or desc")
            key = SortKey(words[0])
            if any(k is key for k, _ in keys):
                raise InvalidArgument.of("order_by", f"{key.value} is named twice")
            keys.append((key, len(words) == 2 and words[1].lower() == "desc"))
    if not any(k is SortKey.NAME for k, _ in keys):
        keys.append((SortKey.NAME, keys[-1][1] if keys else False))
    # Keys after name can never break a tie: name is unique in a namespace.
    cut = [k for k, _ in keys].index(SortKey.NAME) + 1
    return Ordering(tuple(keys[:cut]))

"""A service's filterable fields: their names, types and operators, what the parser type-checks.

Each service declares one logical `Schema` in its domain; where the read model
keeps each field (a SQL column expression) is the storage adapter's, handed
to the compiler (`modelreg.filtering.postgres`) beside the schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from modelreg.filtering.ast import LiteralKind

COMPARE_OPS = ("=", "!=", "<", "<=", ">", ">=")
EQUALITY_OPS = ("=", "!=")


class FieldType(StrEnum):
    STRING = "string"
    """A text column; any literal compares as it is written (`tags.tier = 10` is "10")."""
    INT = "int"
    DOUBLE = "double"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    ENUM = "enum"
    ROW = "row"
    """Several int columns compared as one row, e.g. (major, minor, pipeline) for a semver."""
    STRING_MAP = "string_map"
    """A jsonb object of strings: `tags.<key>`."""
    TYPED_MAP = "typed_map"
    """A jsonb object of {"type": ..., member: value}: the literal's type picks the member."""
    STRING_LIST = "string_list"
    """A jsonb array of strings: `owners:"alice"`."""
    STRING_ARRAY = "string_array"
    """A text[]: `pointer = "PRODUCTION"` holds when an element equals it (`!=` when none does)."""
    FULL_TEXT = "full_text"
    """A tsvector: `text:"words"`."""


_DEFAULT_OPS: dict[FieldType, tuple[str, ...]] = {
    FieldType.STRING: (*COMPARE_OPS, "in", "like"),
    FieldType.INT: (*COMPARE_OPS, "in"),
    FieldType.DOUBLE: (*COMPARE_OPS, "in"),
    FieldType.BOOL: (*EQUALITY_OPS, "in"),
    FieldType.TIMESTAMP: (*COMPARE_OPS, "in"),
    FieldType.ENUM: (*EQUALITY_OPS, "in"),
    FieldType.ROW: (*COMPARE_OPS, "in"),
    FieldType.STRING_MAP: (*COMPARE_OPS, "in", "like", ":"),
    FieldType.TYPED_MAP: (*COMPARE_OPS, "in", "like", ":"),
    FieldType.STRING_LIST: (":",),
    FieldType.STRING_ARRAY: (*EQUALITY_OPS, "in"),
    FieldType.FULL_TEXT: (":",),
}

_CASTS = {
    LiteralKind.STRING: "text",
    LiteralKind.NUMBER: "numeric",
    LiteralKind.BOOL: "boolean",
    LiteralKind.TIMESTAMP: "timestamptz",
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    operators: tuple[str, ...] = ()
    """The operators allowed, a subset of the type's (`=`.. `>=`, "in", "like", ":"); () = all."""
    nullable: bool = False
    """The field may be NULL: comparisons are COALESCEd to false, so NOT stays two-valued."""
    values: Mapping[str, str] = field(default_factory=dict)
    """ENUM: each accepted spelling (upper case, e.g. ACTIVE) -> the value stored."""
    enum_prefix: str = ""
    """ENUM: an optional prefix of the spelling, e.g. STATE_ (STATE_ACTIVE = ACTIVE)."""
    key_pattern: re.Pattern[str] | None = None
    """Maps: what a key must match."""
    minimum: int | None = None
    """INT: the smallest value a filter may name."""
    parse_row: Callable[[str], tuple[int, ...] | None] | None = None
    """ROW: the literal text -> the tuple of ints, None when it is not one."""
    row_description: str = ""
    """ROW: what a literal looks like, for errors (e.g. "a semver MAJOR.MINOR.PIPELINE")."""
    members: Mapping[LiteralKind, str] = field(
        default_factory=lambda: {
            LiteralKind.STRING: "s",
            LiteralKind.NUMBER: "n",
            LiteralKind.BOOL: "b",
            LiteralKind.TIMESTAMP: "t",
        }
    )
    """TYPED_MAP: the jsonb member holding a value of each literal kind."""
    absent_is_unequal: bool = False
    """STRING_MAP: `tags.k != "v"` also matches rows without the key."""
    prefix_index: bool = False
    """STRING: a btree in "C" order serves the field's column, so LIKE 'abc%' also adds its range."""
    text_config: str = "english"
    """FULL_TEXT: the text search configuration of the tsvector."""

    @property
    def is_map(self) -> bool:
        return self.type in (FieldType.STRING_MAP, FieldType.TYPED_MAP)

    def allows(self, op: str) -> bool:
        return op in (self.operators or _DEFAULT_OPS[self.type])

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(op for op in _DEFAULT_OPS[self.type] if self.allows(op))

    @property
    def display(self) -> str:
        return f"{self.name}.<key>" if self.is_map else self.name

    def cast(self, kind: LiteralKind) -> str:
        return _CASTS[kind]


@dataclass(frozen=True, slots=True)
class Schema:
    fields: tuple[FieldSpec, ...]
    max_chars: int = 4096
    max_depth: int = 32
    max_in_values: int = 100

    def get(self, name: str) -> FieldSpec | None:
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None

    def spec(self, name: str) -> FieldSpec:
        spec = self.get(name)
        assert spec is not None, name
        return spec

    @property
    def field_list(self) -> str:
        return ", ".join(spec.display for spec in self.fields)

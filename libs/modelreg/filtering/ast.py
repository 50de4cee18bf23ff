"""The typed AST every surface syntax parses into and the compiler reads.

A tree is already type-checked against its service's schema: each literal has
the type its field compares with, each operator is one the field allows. So a
compiler never meets a malformed tree, and a second parser (MLflow's filter
strings, say) only has to build these nodes through `schema.Checker`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    """A field of the schema."""
    key: str = ""
    """The map key of `name.<key>` (tags, properties, params)."""


class LiteralKind(StrEnum):
    STRING = "string"
    NUMBER = "number"
    INT = "int"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    ENUM = "enum"
    ROW = "row"


@dataclass(frozen=True, slots=True)
class Literal:
    kind: LiteralKind
    value: str | Decimal | int | bool | datetime | tuple[int, ...]
    text: str
    """The literal as written (unquoted): what string fields compare against."""


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: str  # = != < <= > >=
    value: Literal


@dataclass(frozen=True, slots=True)
class In:
    """`field IN (a, b)`: the same as `field = a OR field = b`."""

    field: Field
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Like:
    field: Field
    pattern: str
    insensitive: bool


@dataclass(frozen=True, slots=True)
class Exists:
    """`tags.k:*`: the map has the key."""

    field: Field


@dataclass(frozen=True, slots=True)
class Has:
    """`owners:"p"` (the list holds the value) or `text:"words"` (a full-text match)."""

    field: Field
    value: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Compare | In | Like | Exists | Has | Not | And | Or

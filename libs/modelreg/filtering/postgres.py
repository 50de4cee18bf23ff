"""The typed AST -> a parameterised PostgreSQL boolean expression, through a service's schema.

Every value travels as a `$n` bind parameter; field names resolve to the
column expressions the storage adapter maps them to (plain SQL text written by
the service, never taken from a filter), operators to a fixed table. Every atom is
NULL-free (COALESCE where a column or map member can be absent), so NOT is
plain two-valued negation, as a filter's reader expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_never

from modelreg.filtering.ast import (
    And,
    Compare,
    Exists,
    Has,
    In,
    Like,
    Literal,
    LiteralKind,
    Node,
    Not,
    Or,
)
from modelreg.filtering.schema import FieldSpec, FieldType, Schema

_SQL_OP = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_COLUMN_CAST = {
    FieldType.STRING: "text",
    FieldType.INT: "bigint",
    FieldType.DOUBLE: "double precision",
    FieldType.BOOL: "boolean",
    FieldType.TIMESTAMP: "timestamptz",
    FieldType.ENUM: "text",
}


def compile_filter(node: Node, schema: Schema, columns: Mapping[str, str], params: list[object]) -> str:
    """The SQL for `node`; appends its values to `params` (so `$n` continues their numbering)."""
    return Compiler(schema, columns, params).node(node)


class Compiler:
    def __init__(
        self, schema: Schema, columns: Mapping[str, str], params: list[object] | None = None
    ) -> None:
        """`columns`: each schema field's name -> the SQL expression the read model holds it in
        (a jsonb object for maps)."""
        missing = [spec.name for spec in schema.fields if spec.name not in columns]
        if missing:
            raise ValueError(f"no column for the filter field(s) {', '.join(missing)}")
        self.schema = schema
        self.columns = columns
        self.params: list[object] = [] if params is None else params

    def param(self, value: object, cast: str) -> str:
        self.params.append(value)
        return f"${len(self.params)}::{cast}"

    def node(self, node: Node) -> str:
        match node:
            case And(operands):
                return " AND ".join(f"({self.node(o)})" for o in operands)
            case Or(operands):
                return " OR ".join(f"({self.node(o)})" for o in operands)
            case Not(operand):
                return f"NOT ({self.node(operand)})"
            case In(field, values):
                return " OR ".join(f"({self.node(Compare(field, '=', v))})" for v in values)
            case Compare(field, op, value):
                return self.compare(self.schema.spec(field.name), field.key, _SQL_OP[op], value)
            case Like(field, pattern, insensitive):
                return self.like(self.schema.spec(field.name), field.key, pattern, insensitive)
            case Exists(field):
                return f"{self.columns[field.name]} ? {self.param(field.key, 'text')}"
            case Has(field, value):
                spec, column = self.schema.spec(field.name), self.columns[field.name]
                if spec.type is FieldType.FULL_TEXT:
                    words = self.param(value, "text")
                    return f"{column} @@ websearch_to_tsquery('{spec.text_config}'::regconfig, {words})"
                return f"{column} @> jsonb_build_array({self.param(value, 'text')})"
            case _:
                assert_never(node)

    def compare(self, spec: FieldSpec, key: str, op: str, value: Literal) -> str:
        column = self.columns[spec.name]
        if spec.type is FieldType.STRING_MAP:
            return self.compare_string_map(spec, key, op, value)
        if spec.type is FieldType.TYPED_MAP:
            return self.compare_typed_map(spec, key, op, value)
        if spec.type is FieldType.STRING_ARRAY:
            element = f"{self.param(value.value, 'text')} = ANY({column})"
            return element if op == "=" else f"NOT ({element})"
        if spec.type is FieldType.ROW:
            assert isinstance(value.value, tuple)
            row = ", ".join(self.param(part, "bigint") for part in value.value)
            return f"{column} {op} ({row})"
        typed = self.param(value.value, _COLUMN_CAST[spec.type])
        if spec.nullable:
            return f"COALESCE({column} {op} {typed}, false)"
        return f"{column} {op} {typed}"

    def map_string(self, spec: FieldSpec, key: str) -> str:
        """The text a string comparison or LIKE looks at (NULL when absent or not a string)."""
        column, k = self.columns[spec.name], self.param(key, "text")
        if spec.type is FieldType.STRING_MAP:
            return f'({column} ->> {k}) COLLATE "C"'
        return f"({column} -> {k} ->> '{spec.members[LiteralKind.STRING]}') COLLATE \"C\""

    def compare_string_map(self, spec: FieldSpec, key: str, op: str, value: Literal) -> str:
        column = self.columns[spec.name]
        if op == "=":  # containment, so a GIN index on the map answers it
            k, v = self.param(key, "text"), self.param(value.value, "text")
            return f"{column} @> jsonb_build_object({k}, {v})"
        if op == "<>" and spec.absent_is_unequal:
            k, v = self.param(key, "text"), self.param(value.value, "text")
            return f"({column} ->> {k}) IS DISTINCT FROM {v}"
        return f"COALESCE({self.map_string(spec, key)} {op} {self.param(value.value, 'text')}, false)"

    def compare_typed_map(self, spec: FieldSpec, key: str, op: str, value: Literal) -> str:
        column, k = self.columns[spec.name], self.param(key, "text")
        member, cast = spec.members[value.kind], spec.cast(value.kind)
        v = self.param(value.value, cast)
        if op == "=" and value.kind is not LiteralKind.TIMESTAMP:
            # {"key": {"n": 5}} is contained in {"key": {"type": "int", "n": 5.0}}: jsonb compares
            # numbers numerically, so ints and doubles may share a member.
            return f"{column} @> jsonb_build_object({k}, jsonb_build_object('{member}', {v}))"
        extracted = f"({column} -> {k} ->> '{member}')"
        typed = f'{extracted} COLLATE "C"' if cast == "text" else f"{extracted}::{cast}"
        return f"COALESCE({typed} {op} {v}, false)"

    def like(self, spec: FieldSpec, key: str, pattern: str, insensitive: bool) -> str:
        op = "ILIKE" if insensitive else "LIKE"
        column = self.columns[spec.name]
        text = self.map_string(spec, key) if spec.is_map else column
        matched = f"COALESCE({text} {op} {self.param(pattern, 'text')}, false)"
        prefix = like_prefix(pattern)
        if spec.prefix_index and not insensitive and prefix:
            # Implied by the LIKE, but spelled out so the column's btree scans just the
            # prefix's range: the pattern is a bind parameter, so the planner cannot derive it.
            bounds = f"{column} >= {self.param(prefix, 'text')}"
            if ord(prefix[-1]) < 0x10FFFF:
                upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
                bounds += f" AND {column} < {self.param(upper, 'text')}"
            return f"({bounds} AND {matched})"
        return matched


def like_prefix(pattern: str) -> str:
    """The literal text every match of a LIKE pattern starts with."""
    prefix: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c in "%_":
            break
        if c == "\\":
            i += 1
            c = pattern[i]
        prefix.append(c)
        i += 1
    return "".join(prefix)

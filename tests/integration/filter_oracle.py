"""A Python oracle of the shared filter language, for List calls' property tests.

A test describes its resource's fields (type and a getter over the listed
item), draws random filter ASTs over them, renders them to filter text, and
compares the service's answer with this module's independent evaluation. It
shares no code with modelreg.filtering.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

Getter = Callable[[Any], Any]
Tree = tuple[Any, ...]

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # string | timestamp | bool | enum | any (a list that `=` searches)
    get: Getter
    """The item's value: None when unset (comparisons are then false), a list for `any`."""
    values: Sequence[Any] = ()
    """Values worth comparing with: enum names, or strings; times come from the items."""


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_value(field: Field, value: Any) -> str:
    if field.type == "timestamp":
        return quote(rfc3339(value))
    if field.type == "bool":
        return "true" if value else "false"
    if field.type == "enum":
        return str(value)
    return quote(value)


def render(node: Tree) -> str:
    match node[0]:
        case "cmp":
            _, field, op, value = node
            return f"{field.name} {op} {render_value(field, value)}"
        case "in":
            _, field, values, negated = node
            keyword = "NOT IN" if negated else "IN"
            return f"{field.name} {keyword} ({', '.join(render_value(field, v) for v in values)})"
        case "like":
            _, field, pattern, insensitive = node
            return f"{field.name} {'ILIKE' if insensitive else 'LIKE'} {quote(pattern)}"
        case "not":
            return f"NOT ({render(node[1])})"
        case "and" | "or":
            return "(" + f" {node[0].upper()} ".join(render(x) for x in node[1]) + ")"
    raise AssertionError(node)


def like(value: str, pattern: str, insensitive: bool) -> bool:
    """`%` any run, `_` any one character, `\\` takes the next character literally."""
    regex = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if c == "%" else "." if c == "_" else re.escape(c)
        i += 1
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if insensitive else 0)) is not None


def evaluate(node: Tree, item: Any) -> bool:
    match node[0]:
        case "cmp":
            _, field, op, value = node
            current = field.get(item)
            if field.type == "any":
                return (value in current) == (op == "=")
            return current is not None and OPS[op](current, value)
        case "in":
            _, field, values, negated = node
            return any(evaluate(("cmp", field, "=", v), item) for v in values) != negated
        case "like":
            _, field, pattern, insensitive = node
            current = field.get(item)
            return current is not None and like(current, pattern, insensitive)
        case "not":
            return not evaluate(node[1], item)
        case "and":
            return all(evaluate(x, item) for x in node[1])
        case "or":
            return any(evaluate(x, item) for x in node[1])
    raise AssertionError(node)


def times_of(fields: Sequence[Field], items: Sequence[Any]) -> list[datetime]:
    """Every stored time, and a microsecond either side of each: where `<` and `<=` differ."""
    stored = {f.get(i) for f in fields if f.type == "timestamp" for i in items} - {None}
    step = timedelta(microseconds=1)
    return sorted(stored | {t - step for t in stored} | {t + step for t in stored})


def comparisons(fields: Sequence[Field], items: Sequence[Any]) -> st.SearchStrategy[Tree]:
    times = times_of(fields, items)
    options: list[st.SearchStrategy[Tree]] = []
    for field in fields:
        match field.type:
            case "timestamp":
                value = st.sampled_from(times)
                options.append(st.tuples(st.just("cmp"), st.just(field), st.sampled_from(list(OPS)), value))
            case "string":
                value = st.sampled_from(list(field.values))
                options.append(st.tuples(st.just("cmp"), st.just(field), st.sampled_from(list(OPS)), value))
                patterns = st.builds(
                    lambda v, cut, kind: (v[:cut] + "%", "%" + v[cut:], v[:cut] + "_" + v[cut + 1 :])[kind],
                    value,
                    st.integers(0, 3),
                    st.integers(0, 2),
                )
                options.append(st.tuples(st.just("like"), st.just(field), patterns, st.booleans()))
            case "bool":
                options.append(
                    st.tuples(st.just("cmp"), st.just(field), st.sampled_from(["=", "!="]), st.booleans())
                )
            case "enum" | "any":
                value = st.sampled_from(list(field.values))
                options.append(st.tuples(st.just("cmp"), st.just(field), st.sampled_from(["=", "!="]), value))
        if field.type in ("string", "enum", "any"):
            values = st.lists(st.sampled_from(list(field.values)), min_size=1, max_size=3)
            options.append(st.tuples(st.just("in"), st.just(field), values, st.booleans()))
    return st.one_of(options)


def filters(fields: Sequence[Field], items: Sequence[Any]) -> st.SearchStrategy[Tree]:
    return st.recursive(
        comparisons(fields, items),
        lambda inner: st.one_of(
            st.tuples(st.just("not"), inner),
            st.tuples(st.just("and"), st.lists(inner, min_size=2, max_size=3)),
            st.tuples(st.just("or"), st.lists(inner, min_size=2, max_size=3)),
        ),
        max_leaves=5,
    )


def boundaries(field: Field, value: Any) -> list[Tree]:
    """Every operator of `field` against a stored `value`, where each pair (< vs <=, = vs !=,
    LIKE vs ILIKE, IN vs NOT IN) must select different items."""
    ops = list(OPS) if field.type in ("string", "timestamp") else ["=", "!="]
    nodes: list[Tree] = [("cmp", field, op, value) for op in ops]
    if field.type in ("string", "enum", "any"):
        nodes += [("in", field, [value], negated) for negated in (False, True)]
    if field.type == "string":
        nodes += [("like", field, value[:2] + "%", False), ("like", field, value[:2].upper() + "%", True)]
    return nodes

"""MLflow's search grammar (mlflow/utils/search_utils.py), parsed once, then translated into
the registry's filter language (models) or evaluated on the versions the gateway read.

    filter  := clause { AND clause }
    clause  := key op value | key [NOT] IN "(" value {"," value} ")"
    key     := name | version_number | run_id | source_path | tags.<k> | tag.<k>
               (<k> bare, or quoted with backticks or double quotes)
    op      := = | != | LIKE | ILIKE | < | <= | > | >=
    value   := 'string' | "string" | number

A tag compared with `!=` also matches a model or version that lacks the tag, as in MLflow
(MlflowClient adds ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every model search).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modelreg.gateway.mlflow.errors import invalid
from modelreg.names import ID_PATTERN

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<backtick>`[^`]*`)
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),.])
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*)
    )""",
    re.VERBOSE,
)
FIELDS = ("name", "version_number", "run_id", "source_path")
ATTRIBUTE_ALIASES = {"version": "version_number", "source": "source_path"}


@dataclass(frozen=True, slots=True)
class Clause:
    field: str
    """`name`, `version_number`, `run_id`, `source_path`, or `tag`."""
    op: str
    """=, !=, LIKE, ILIKE, IN, NOT IN, <, <=, >, >= (upper case)."""
    values: tuple[str | int | float, ...]
    key: str = ""
    """The tag's key, for field `tag`."""


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise invalid(f"Invalid filter '{text}': unexpected character at position {position}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


def parse(text: str, allowed: Sequence[str]) -> list[Clause]:
    """The clauses of an MLflow filter; INVALID_PARAMETER_VALUE naming what is wrong."""
    if not text or not text.strip():
        return []
    tokens = _tokens(text)
    clauses: list[Clause] = []
    i = 0

    def take() -> tuple[str, str]:
        nonlocal i
        if i >= len(tokens):
            raise invalid(f"Invalid filter '{text}': it ends early")
        i += 1
        return tokens[i - 1]

    def peek() -> tuple[str, str] | None:
        return tokens[i] if i < len(tokens) else None

    while True:
        kind, value = take()
        if kind == "backtick":
            field, key = value[1:-1], ""
        elif kind == "word":
            field, key = value, ""
        elif kind == "string" and value.startswith('"'):
            field, key = _unquote(value), ""
        else:
            raise invalid(f"Invalid filter '{text}': expected an attribute or tag, found {value!r}")
        if field.lower() in ("tags", "tag"):
            if take() != ("punct", "."):
                raise invalid(f"Invalid filter '{text}': expected '.' after {field}")
            kind, raw = take()
            if kind in ("backtick",) or (kind == "string" and raw.startswith('"')):
                key = raw[1:-1] if kind == "backtick" else _unquote(raw)
            elif kind in ("word", "number"):
                key = raw
                while (
                    peek() == ("punct", ".")
                    and i + 1 < len(tokens)
                    and tokens[i + 1][0] in ("word", "number")
                ):
                    take()
                    key += "." + take()[1]
            else:
                raise invalid(f"Invalid filter '{text}': expected a tag key after {field}.")
            field = "tag"
        else:
            field = ATTRIBUTE_ALIASES.get(field.lower(), field.lower())
            if field not in allowed:
                raise invalid(
                    f"Invalid attribute key '{field}' specified. Valid keys are "
                    f"'{set(a for a in allowed if a != 'tag')}'"
                )
        kind, op = take()
        op = op.upper()
        if kind == "word" and op == "NOT":
            kind2, word = take()
            if word.upper() != "IN":
                raise invalid(f"Invalid filter '{text}': expected IN after NOT")
            op = "NOT IN"
        elif kind == "op":
            op = "!=" if op == "<>" else op
        elif not (kind == "word" and op in ("LIKE", "ILIKE", "IN")):
            raise invalid(f"Invalid filter '{text}': expected a comparison after {field}, found {op!r}")
        values: list[str | int | float] = []
        if op in ("IN", "NOT IN"):
            if take() != ("punct", "("):
                raise invalid(f"Invalid filter '{text}': expected '(' after {op}")
            while True:
                values.append(_value(take(), text))
                sep = take()
                if sep == ("punct", ")"):
                    break
                if sep != ("punct", ","):
                    raise invalid(f"Invalid filter '{text}': expected ',' or ')' in the {op} list")
        else:
            values.append(_value(take(), text))
        _check(field, op, values, text)
        clauses.append(Clause(field, op, tuple(values), key))
        following = peek()
        if following is None:
            return clauses
        take()
        if following[0] != "word" or following[1].upper() != "AND":
            raise invalid(f"Invalid filter '{text}': clauses are joined with AND, found {following[1]!r}")


def _value(token: tuple[str, str], text: str) -> str | int | float:
    kind, raw = token
    if kind == "string":
        return _unquote(raw)
    if kind == "number":
        return float(raw) if "." in raw else int(raw)
    raise invalid(f"Invalid filter '{text}': expected a quoted string or a number, found {raw!r}")


def _check(field: str, op: str, values: list[str | int | float], text: str) -> None:
    if field == "version_number":
        if op not in ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"):
            raise invalid(f"Invalid comparator '{op}' for version_number in '{text}'")
        for v in values:
            if isinstance(v, str) and not v.isdigit():
                raise invalid(f"Invalid version_number {v!r} in '{text}': it must be an integer")
        return
    if op in ("<", "<=", ">", ">="):
        raise invalid(f"Invalid comparator '{op}' for {field} in '{text}': use =, !=, LIKE, ILIKE or IN")
    for v in values:
        if not isinstance(v, str):
            raise invalid(f"Invalid value {v!r} for {field} in '{text}': it must be a quoted string")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MatchesNothing(Exception):
    """The filter cannot match any model (e.g. a tag key the registry cannot hold)."""


def name_filter(op: str, values: Sequence[str]) -> str:
    """MLflow's `name` in the catalog's language: a model's display name, or its id when it
    has none (a model registered natively, without a display name)."""
    quoted = [_quote(v) for v in values]
    if op in ("IN", "NOT IN"):
        listed = f"({', '.join(quoted)})"
        test = f'(display_name IN {listed} OR (display_name = "" AND name IN {listed}))'
        return f"NOT {test}" if op == "NOT IN" else test
    if op == "!=":
        return f'NOT (display_name = {quoted[0]} OR (display_name = "" AND name = {quoted[0]}))'
    return f'(display_name {op} {quoted[0]} OR (display_name = "" AND name {op} {quoted[0]}))'


def to_catalog_filter(clauses: Sequence[Clause]) -> str:
    """The catalog's filter for MLflow's model clauses (name and tags only).

    `tags.k != 'v'` becomes `NOT tags.k = "v"`, which also matches models without the tag
    (the catalog's `!=` alone does not). Raises MatchesNothing when no model can match.
    """
    parts: list[str] = []
    for clause in clauses:
        if clause.field == "name":
            parts.append(name_filter(clause.op, [str(v) for v in clause.values]))
            continue
        if clause.field == "tag":
            if not ID_PATTERN.fullmatch(clause.key):
                # The registry holds no such tag: only a negative comparison can be true.
                if clause.op in ("!=", "NOT IN"):
                    continue
                raise MatchesNothing
            target = f"tags.{clause.key}"
        else:
            raise invalid(f"Invalid attribute key '{clause.field}' specified. Valid keys are '{{'name'}}'")
        values = [_quote(str(v)) for v in clause.values]
        if clause.op == "IN":
            parts.append(f"{target} IN ({', '.join(values)})")
        elif clause.op == "NOT IN":
            parts.append(f"NOT {target} IN ({', '.join(values)})")
        elif clause.op == "!=":
            parts.append(f"NOT {target} = {values[0]}")
        else:
            parts.append(f"{target} {clause.op} {values[0]}")
    return " AND ".join(parts)


def _like(pattern: str, value: str, fold: bool) -> bool:
    regex = ""
    escaped = False
    for char in pattern:
        if escaped:
            regex += re.escape(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            regex += ".*"
        elif char == "_":
            regex += "."
        else:
            regex += re.escape(char)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if fold else 0)) is not None


def matches(clauses: Sequence[Clause], attributes: Mapping[str, str | int], tags: Mapping[str, str]) -> bool:
    """Whether a version with these attributes and tags passes every clause (MLflow's rules:
    a missing tag fails =, LIKE, ILIKE and IN, and passes != and NOT IN)."""
    for clause in clauses:
        if clause.field == "tag":
            present = clause.key in tags
            value: str | int | None = tags.get(clause.key)
        else:
            present = True
            value = attributes[clause.field]
        if not present or value is None:
            if clause.op in ("!=", "NOT IN"):
                continue
            return False
        if not _compare(clause, value):
            return False
    return True


def _compare(clause: Clause, value: str | int) -> bool:
    if clause.field == "version_number":
        number = int(value)
        wanted = [int(v) for v in clause.values]
        op = clause.op
        return {
            "=": number == wanted[0],
            "!=": number != wanted[0],
            "<": number < wanted[0],
            "<=": number <= wanted[0],
            ">": number > wanted[0],
            ">=": number >= wanted[0],
            "IN": number in wanted,
            "NOT IN": number not in wanted,
        }[op]
    text = str(value)
    strings = [str(v) for v in clause.values]
    match clause.op:
        case "=":
            return text == strings[0]
        case "!=":
            return text != strings[0]
        case "LIKE":
            return _like(strings[0], text, False)
        case "ILIKE":
            return _like(strings[0], text, True)
        case "IN":
            return text in strings
        case "NOT IN":
            return text not in strings
    return False

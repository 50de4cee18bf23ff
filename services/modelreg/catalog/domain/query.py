"""The search language of ListRegisteredModels: a filter parser and order_by.

A hand-written recursive-descent parser turns the filter text into a small,
typed AST; the Postgres adapter compiles that AST into parameterised SQL. The
parser does all type checking (which operators and literals go with which
field), so the compiler never meets a malformed tree and every mistake is
reported against the filter text: its 0-based position and what was expected.

    expr        := term { OR term }
    term        := factor { AND factor }
    factor      := NOT factor | "(" expr ")" | restriction
    restriction := field op value | field [NOT] IN "(" value {"," value} ")"
                 | field [NOT] (LIKE | ILIKE) string | field ":" ("*" | string)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from modelreg.catalog.domain.names import ID_PATTERN
from modelreg.errors import FieldViolation, InvalidArgument

MAX_FILTER_CHARS = 4096
MAX_DEPTH = 32
MAX_IN_VALUES = 100


class FieldKind(StrEnum):
    NAME = "name"
    STATE = "state"
    CREATE_TIME = "create_time"
    UPDATE_TIME = "update_time"
    TAG = "tags"
    PROPERTY = "properties"
    OWNERS = "owners"
    TEXT = "text"


class LiteralKind(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    STATE = "state"


@dataclass(frozen=True, slots=True)
class Field:
    kind: FieldKind
    key: str = ""
    """The map key of tags.<key> / properties.<key>."""


@dataclass(frozen=True, slots=True)
class Literal:
    kind: LiteralKind
    value: str | Decimal | bool | datetime
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
class Has:
    """`tags.k:*` / `properties.k:*` (key present), `owners:"p"`, `text:"words"`."""

    field: Field
    value: str | None


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Compare | In | Like | Has | Not | And | Or

ORDER_OPS = ("<", "<=", ">", ">=")
STATES = {"active": "active", "archived": "archived", "deleted": "deleted"}


class ParseError(InvalidArgument):
    def __init__(self, position: int, expected: str, found: str) -> None:
        super().__init__(
            FieldViolation("filter", f"at position {position}: expected {expected}, found {found}")
        )
        self.position = position
        self.expected = expected
        self.found = found


# Lexer ----------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<timestamp>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2}))
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|!=|=|<|>|:)
  | (?P<punct>[(),*])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.\-]*)
    """,
    re.VERBOSE | re.DOTALL,
)
_KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "true", "false"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # timestamp number string op punct ident keyword end
    text: str
    position: int

    def describe(self) -> str:
        return "end of filter" if self.kind == "end" else repr(self.text)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position] in "\"'":
                raise ParseError(position, f"a closing {text[position]} for the string", "end of filter")
            raise ParseError(position, "a field, value, operator or parenthesis", repr(text[position]))
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            value = match.group()
            if kind == "ident" and value.lower() in _KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, value, position))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _unquote(token: Token) -> str:
    body = token.text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise ParseError(token.position + i + 1, "one of \\\" \\' \\\\ \\n \\t \\r", repr("\\" + nxt))
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_timestamp(text: str) -> datetime | None:
    """RFC 3339 with a mandatory offset; fractions beyond microseconds are truncated."""
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})", text
    )
    if match is None:
        return None
    base, fraction, offset = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    try:
        parsed = datetime.fromisoformat(f"{base.upper()}.{micros}{'+00:00' if offset in 'Zz' else offset}")
    except ValueError:
        return None
    return parsed.astimezone(UTC)


# Parser ---------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def keyword(self, *words: str) -> bool:
        return self.token.kind == "keyword" and self.token.text.lower() in words

    def fail(self, expected: str, token: Token | None = None) -> ParseError:
        token = token or self.token
        return ParseError(token.position, expected, token.describe())

    def expect_punct(self, char: str) -> Token:
        if self.token.kind != "punct" or self.token.text != char:
            raise self.fail(repr(char))
        return self.advance()

    def parse(self) -> Node | None:
        if self.token.kind == "end":
            return None
        node = self.expr()
        if self.token.kind != "end":
            raise self.fail("AND, OR or end of filter" if self.depth == 0 else "')'")
        return node

    def expr(self) -> Node:
        operands = [self.term()]
        while self.keyword("or"):
            self.advance()
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def term(self) -> Node:
        operands = [self.factor()]
        while self.keyword("and"):
            self.advance()
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def factor(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"at most {MAX_DEPTH} nested NOTs and parentheses")
        try:
            if self.keyword("not"):
                self.advance()
                return Not(self.factor())
            if self.token.kind == "punct" and self.token.text == "(":
                self.advance()
                node = self.expr()
                if self.token.kind != "punct" or self.token.text != ")":
                    raise self.fail("AND, OR or ')'")
                self.advance()
                return node
            return self.restriction()
        finally:
            self.depth -= 1

    def field(self) -> Field:
        token = self.token
        expected = (
            "a field (name, state, create_time, update_time, tags.<key>, properties.<key>, owners, text)"
        )
        if token.kind != "ident":
            raise self.fail(expected)
        head, dot, key = token.text.partition(".")
        if dot and head in ("tags", "properties"):
            if not ID_PATTERN.match(key):
                raise ParseError(
                    token.position + len(head) + 1, f"a key matching {ID_PATTERN.pattern}", repr(key)
                )
            self.advance()
            return Field(FieldKind(head), key)
        if not dot and head in ("name", "state", "create_time", "update_time", "owners", "text"):
            self.advance()
            return Field(FieldKind(head))
        raise self.fail(expected)

    def restriction(self) -> Node:
        field = self.field()
        op_token = self.token
        negated = False
        if self.keyword("not"):
            self.advance()
            negated = True
            if not self.keyword("in", "like", "ilike"):
                raise self.fail("IN, LIKE or ILIKE after NOT")
        node: Node
        if self.keyword("in"):
            self._allow(field, "in", op_token)
            self.advance()
            self.expect_punct("(")
            values = [self.value(field, "=")]
            while self.token.kind == "punct" and self.token.text == ",":
                self.advance()
                if len(values) >= MAX_IN_VALUES:
                    raise self.fail(f"')' (at most {MAX_IN_VALUES} values in IN)")
                values.append(self.value(field, "="))
            if self.token.kind != "punct" or self.token.text != ")":
                raise self.fail("',' or ')'")
            self.advance()
            node = In(field, tuple(values))
        elif self.keyword("like", "ilike"):
            insensitive = self.token.text.lower() == "ilike"
            self._allow(field, "like", op_token)
            self.advance()
            pattern_token = self.token
            if pattern_token.kind != "string":
                raise self.fail("a quoted pattern")
            self.advance()
            pattern = _unquote(pattern_token)
            if _ends_in_escape(pattern):
                raise ParseError(
                    pattern_token.position, "a pattern that does not end in a lone backslash", repr(pattern)
                )
            node = Like(field, pattern, insensitive)
        elif op_token.kind == "op" and op_token.text == ":":
            self._allow(field, ":", op_token)
            self.advance()
            node = self.has(field)
        elif op_token.kind == "op":
            self._allow(field, op_token.text, op_token)
            self.advance()
            value = self.value(field, op_token.text)
            if value.kind in (LiteralKind.BOOL, LiteralKind.STATE) and op_token.text in ORDER_OPS:
                raise ParseError(op_token.position, f"= or != before {value.text}", repr(op_token.text))
            node = Compare(field, op_token.text, value)
        else:
            raise self.fail(_operators(field))
        return Not(node) if negated else node

    def has(self, field: Field) -> Has:
        token = self.token
        if field.kind in (FieldKind.TAG, FieldKind.PROPERTY):
            if token.kind != "punct" or token.text != "*":
                raise self.fail("'*'")
            self.advance()
            return Has(field, None)
        if token.kind != "string":
            raise self.fail("a quoted string")
        self.advance()
        value = _unquote(token)
        if field.kind is FieldKind.TEXT and not value.strip():
            raise ParseError(token.position, "some words to search for", repr(token.text))
        return Has(field, value)

    def _allow(self, field: Field, op: str, token: Token) -> None:
        allowed = _ALLOWED[field.kind]
        if op not in allowed:
            raise ParseError(token.position, _operators(field), token.describe())

    def value(self, field: Field, op: str) -> Literal:
        token = self.token
        kind = field.kind
        if kind is FieldKind.STATE:
            if token.kind not in ("ident", "string"):
                raise self.fail("a state: ACTIVE, ARCHIVED or DELETED")
            raw = _unquote(token) if token.kind == "string" else token.text
            state = STATES.get(raw.lower().removeprefix("state_"))
            if state is None:
                raise self.fail("a state: ACTIVE, ARCHIVED or DELETED")
            self.advance()
            return Literal(LiteralKind.STATE, state, raw)
        if kind in (FieldKind.CREATE_TIME, FieldKind.UPDATE_TIME):
            if token.kind in ("timestamp", "string"):
                raw = _unquote(token) if token.kind == "string" else token.text
                when = parse_timestamp(raw)
                if when is not None:
                    self.advance()
                    return Literal(LiteralKind.TIMESTAMP, when, raw)
            raise self.fail("an RFC 3339 timestamp such as 2026-01-31T12:00:00Z")
        literal = self.literal()
        if kind in (FieldKind.NAME, FieldKind.TAG):
            # Names and tags are strings: any literal is compared as written.
            return Literal(LiteralKind.STRING, literal.text, literal.text)
        return literal

    def literal(self) -> Literal:
        token = self.token
        expected = "a value (a quoted string, a number, true, false or an RFC 3339 timestamp)"
        if token.kind == "string":
            self.advance()
            text = _unquote(token)
            return Literal(LiteralKind.STRING, text, text)
        if token.kind == "number":
            try:
                number = Decimal(token.text)
            except InvalidOperation:
                raise self.fail(expected) from None
            self.advance()
            return Literal(LiteralKind.NUMBER, number, token.text)
        if token.kind == "timestamp":
            when = parse_timestamp(token.text)
            if when is None:
                raise self.fail("a valid RFC 3339 timestamp")
            self.advance()
            return Literal(LiteralKind.TIMESTAMP, when, token.text)
        if self.keyword("true", "false"):
            self.advance()
            return Literal(LiteralKind.BOOL, token.text.lower() == "true", token.text.lower())
        raise self.fail(expected)


_COMPARE = ("=", "!=", "<", "<=", ">", ">=")
_ALLOWED: dict[FieldKind, tuple[str, ...]] = {
    FieldKind.NAME: (*_COMPARE, "in", "like"),
    FieldKind.TAG: (*_COMPARE, "in", "like", ":"),
    FieldKind.PROPERTY: (*_COMPARE, "in", "like", ":"),
    FieldKind.STATE: ("=", "!=", "in"),
    FieldKind.CREATE_TIME: (*_COMPARE, "in"),
    FieldKind.UPDATE_TIME: (*_COMPARE, "in"),
    FieldKind.OWNERS: (":",),
    FieldKind.TEXT: (":",),
}


def _operators(field: Field) -> str:
    words = {"in": "IN", "like": "LIKE, ILIKE", ":": "':'"}
    shown = [words.get(op, op) for op in _ALLOWED[field.kind]]
    return f"an operator for {field.kind.value} ({' '.join(shown)})"


def _ends_in_escape(pattern: str) -> bool:
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1


def parse_filter(text: str) -> Node | None:
    """The AST of a filter, or None for an empty one; raises InvalidArgument on `filter`."""
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidArgument.of("filter", f"is {len(text)} characters, at most {MAX_FILTER_CHARS}")
    return _Parser(text).parse()


# order_by -------------------------------------------------------------------


class SortKey(StrEnum):
    NAME = "name"
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
                    "order_by", f"{part.strip()[:100]!r}: expected name, create_time or update_time"
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

"""The filter of ListModelVersions: a small recursive-descent parser into a typed AST.

Deliberately smaller than the catalog's language (services share no code): one
model's versions are few enough that equality on tags and params, state, and
ordered comparisons on semver and number cover what pipelines ask. The parser
type-checks everything, so the Postgres adapter compiles any tree it is given;
every mistake is an INVALID_ARGUMENT on `filter` naming the 0-based position.

    expr        := term { OR term }
    term        := factor { AND factor }
    factor      := NOT factor | "-" factor | "(" expr ")" | restriction
    restriction := field op value | field ":" "*"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelreg.errors import InvalidArgument
from modelreg.versioning.domain.model import SemVer, Status

MAX_FILTER_CHARS = 2048
MAX_DEPTH = 16
MAX_VALUE_CHARS = 512

MAP_FIELDS = ("tags", "params")
STRING_FIELDS = ("framework",)
ORDERED_OPS = ("=", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True, slots=True)
class Compare:
    """`field op value`; field is `tags`/`params` (with key), `framework`, `state`, `semver`
    or `version`. The value is already typed: str, Status, SemVer or int."""

    field: str
    key: str
    op: str
    value: str | Status | SemVer | int


@dataclass(frozen=True, slots=True)
class Has:
    """`tags.k:*`: the key is present."""

    field: str
    key: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Compare | Has | Not | And | Or

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op><=|>=|!=|=|<|>|:|\(|\)|\*|-)
    | (?P<word>[A-Za-z0-9_.]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # string | op | word | end
    text: str
    pos: int


def _error(pos: int, message: str) -> InvalidArgument:
    return InvalidArgument.of("filter", f"at {pos}: {message}")


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise _error(pos, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _unquote(token: _Token) -> str:
    body = token.text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._i = 0
        self._depth = 0

    def _peek(self) -> _Token:
        return self._tokens[self._i]

    def _next(self) -> _Token:
        token = self._tokens[self._i]
        self._i += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token.kind == "word" and token.text == word:
            self._i += 1
            return True
        return False

    def parse(self) -> Node:
        node = self._expr()
        token = self._peek()
        if token.kind != "end":
            raise _error(token.pos, f"expected AND, OR or the end, got {token.text!r}")
        return node

    def _expr(self) -> Node:
        operands = [self._term()]
        while self._keyword("OR"):
            operands.append(self._term())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _term(self) -> Node:
        operands = [self._factor()]
        while self._keyword("AND"):
            operands.append(self._factor())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _factor(self) -> Node:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _error(self._peek().pos, f"nested deeper than {MAX_DEPTH}")
        try:
            token = self._peek()
            if self._keyword("NOT") or (token.kind == "op" and token.text == "-"):
                if token.text == "-":
                    self._i += 1
                return Not(self._factor())
            if token.kind == "op" and token.text == "(":
                self._i += 1
                node = self._expr()
                close = self._next()
                if close.text != ")":
                    raise _error(close.pos, "expected ')'")
                return node
            return self._restriction()
        finally:
            self._depth -= 1

    def _restriction(self) -> Node:
        token = self._next()
        if token.kind != "word" or token.text in ("AND", "OR", "NOT"):
            raise _error(token.pos, f"expected a field, got {token.text or 'the end'!r}")
        field, _, key = token.text.partition(".")
        if field in MAP_FIELDS:
            if not 0 < len(key) <= 128:
                raise _error(token.pos, f"{field}.<key> needs a key, e.g. {field}.k1")
        elif key or field not in (*STRING_FIELDS, "state", "semver", "version"):
            raise _error(
                token.pos,
                f"unknown field {token.text!r}; use tags.<key>, params.<key>, framework, state, "
                "semver or version",
            )
        op = self._next()
        if op.kind != "op" or op.text not in (*ORDERED_OPS, ":"):
            raise _error(op.pos, f"expected a comparison after {token.text}, got {op.text or 'the end'!r}")
        if op.text == ":":
            star = self._next()
            if star.text != "*" or field not in MAP_FIELDS:
                raise _error(star.pos, "only tags.<key>:* and params.<key>:* (presence) are supported")
            return Has(field, key)
        if op.text not in ("=", "!=") and field not in ("semver", "version"):
            raise _error(op.pos, f"{field} supports only = and !=")
        value = self._next()
        if value.kind not in ("string", "word"):
            raise _error(value.pos, f"expected a value, got {value.text or 'the end'!r}")
        text = _unquote(value) if value.kind == "string" else value.text
        if len(text) > MAX_VALUE_CHARS:
            raise _error(value.pos, f"values are at most {MAX_VALUE_CHARS} characters")
        return Compare(field, key, op.text, self._typed(field, text, value.pos))

    @staticmethod
    def _typed(field: str, text: str, pos: int) -> str | Status | SemVer | int:
        if field == "state":
            try:
                return Status(text.lower().removeprefix("state_"))
            except ValueError:
                raise _error(pos, "state is PENDING_UPLOAD, READY, DEPRECATED or DELETED") from None
        if field == "semver":
            try:
                return SemVer.parse(text, "filter")
            except InvalidArgument:
                raise _error(pos, f"{text[:40]!r} is not MAJOR.MINOR.PIPELINE") from None
        if field == "version":
            if not text.isdigit() or len(text) > 18:
                raise _error(pos, "version compares with a whole number")
            return int(text)
        return text


def parse_filter(text: str) -> Node | None:
    """None for an empty filter (everything matches)."""
    if not text.strip():
        return None
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidArgument.of("filter", f"is longer than {MAX_FILTER_CHARS} characters")
    return _Parser(text).parse()

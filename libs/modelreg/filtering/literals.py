"""Typing one literal token for one field: what any surface syntax needs to build the AST.

A second parser (the HTTP gateway's MLflow filter strings) tokenizes its own
text into `lexer.Token`s and calls `value` and `operators` here, so its
literals are typed and its mistakes worded exactly as this syntax's are.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from modelreg.filtering.ast import Literal, LiteralKind
from modelreg.filtering.errors import ParseError
from modelreg.filtering.lexer import Token, parse_timestamp, unquote
from modelreg.filtering.schema import FieldSpec, FieldType

_INT64_MAX = (1 << 63) - 1
_ANY_VALUE = "a value (a quoted string, a number, true, false or an RFC 3339 timestamp)"


def operators(spec: FieldSpec) -> str:
    words = {"in": "IN", "like": "LIKE, ILIKE", ":": "':'"}
    shown = [words.get(op, op) for op in spec.allowed]
    return f"an operator for {spec.name} ({' '.join(shown)})"


def _fail(token: Token, expected: str) -> ParseError:
    return ParseError(token.position, expected, token.describe())


def _bare(token: Token) -> str | None:
    """The text of a token that can stand for a string: quoted, or a bare word or number."""
    if token.kind == "string":
        return unquote(token)
    if token.kind in ("ident", "word", "number", "timestamp"):
        return token.text
    if token.kind == "keyword" and token.text.lower() in ("true", "false"):
        return token.text.lower()
    return None


def value(spec: FieldSpec, token: Token) -> Literal:
    """The literal `token` stands for when compared with `spec`; raises ParseError otherwise."""
    match spec.type:
        case FieldType.ENUM:
            return _enum(spec, token)
        case FieldType.TIMESTAMP:
            if token.kind in ("timestamp", "string"):
                raw = unquote(token) if token.kind == "string" else token.text
                when = parse_timestamp(raw)
                if when is not None:
                    return Literal(LiteralKind.TIMESTAMP, when, raw)
            raise _fail(token, "an RFC 3339 timestamp such as 2026-01-31T12:00:00Z")
        case FieldType.STRING | FieldType.STRING_MAP | FieldType.STRING_ARRAY:
            # Strings compare with any literal as it is written.
            text = _bare(token)
            if text is None:
                raise _fail(token, _ANY_VALUE)
            return Literal(LiteralKind.STRING, text, text)
        case FieldType.INT:
            return _int(spec, token)
        case FieldType.DOUBLE:
            number = _number(token)
            if number is None:
                raise _fail(token, "a number")
            return Literal(LiteralKind.NUMBER, number, token.text)
        case FieldType.BOOL:
            if token.kind == "keyword" and token.text.lower() in ("true", "false"):
                return Literal(LiteralKind.BOOL, token.text.lower() == "true", token.text.lower())
            raise _fail(token, "true or false")
        case FieldType.ROW:
            assert spec.parse_row is not None
            text = _bare(token)
            row = spec.parse_row(text) if text is not None else None
            if row is None:
                raise _fail(token, spec.row_description or f"a value for {spec.name}")
            assert text is not None
            return Literal(LiteralKind.ROW, row, text)
        case FieldType.TYPED_MAP:
            return _typed(token)
    raise _fail(token, f"no comparison for {spec.name}")


def _enum(spec: FieldSpec, token: Token) -> Literal:
    names = list(spec.values)
    expected = f"a {spec.name}: {', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
    if token.kind not in ("ident", "string"):
        raise _fail(token, expected)
    raw = unquote(token) if token.kind == "string" else token.text
    stored = spec.values.get(raw.upper().removeprefix(spec.enum_prefix.upper()))
    if stored is None:
        raise _fail(token, expected)
    return Literal(LiteralKind.ENUM, stored, raw)


def _number(token: Token) -> Decimal | None:
    if token.kind != "number":
        return None
    try:
        return Decimal(token.text)
    except InvalidOperation:
        return None


def _int(spec: FieldSpec, token: Token) -> Literal:
    expected = "a whole number" + (f" of at least {spec.minimum}" if spec.minimum is not None else "")
    number = _number(token)
    if number is None or number != number.to_integral_value() or abs(number) > _INT64_MAX:
        raise _fail(token, expected)
    if spec.minimum is not None and number < spec.minimum:
        raise _fail(token, expected)
    return Literal(LiteralKind.INT, int(number), token.text)


def _typed(token: Token) -> Literal:
    """A literal whose own form gives its type: a map of typed values compares by it."""
    if token.kind == "string":
        text = unquote(token)
        return Literal(LiteralKind.STRING, text, text)
    if token.kind == "number":
        number = _number(token)
        if number is None:
            raise _fail(token, _ANY_VALUE)
        return Literal(LiteralKind.NUMBER, number, token.text)
    if token.kind == "timestamp":
        when = parse_timestamp(token.text)
        if when is None:
            raise _fail(token, "a valid RFC 3339 timestamp")
        return Literal(LiteralKind.TIMESTAMP, when, token.text)
    if token.kind == "keyword" and token.text.lower() in ("true", "false"):
        return Literal(LiteralKind.BOOL, token.text.lower() == "true", token.text.lower())
    if token.kind in ("ident", "word"):
        return Literal(LiteralKind.STRING, token.text, token.text)
    raise _fail(token, _ANY_VALUE)

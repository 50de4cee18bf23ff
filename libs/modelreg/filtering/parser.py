"""The filter syntax: a hand-written recursive-descent parser into the typed AST.

    expr        := term { OR term }
    term        := factor { AND factor }
    factor      := NOT factor | "-" factor | "(" expr ")" | restriction
    restriction := field op value | field [NOT] IN "(" value {"," value} ")"
                 | field [NOT] (LIKE | ILIKE) string | field ":" ("*" | string)

Keywords are case-insensitive. The parser type-checks as it goes (through
`literals`), so every mistake names its 0-based position and what was expected.
"""

from __future__ import annotations

from modelreg.errors import InvalidArgument
from modelreg.filtering import literals
from modelreg.filtering.ast import (
    And,
    Compare,
    Exists,
    Field,
    Has,
    In,
    Like,
    Literal,
    LiteralKind,
    Node,
    Not,
    Or,
)
from modelreg.filtering.errors import ParseError
from modelreg.filtering.lexer import Token, tokenize, unquote
from modelreg.filtering.schema import EQUALITY_OPS, FieldSpec, FieldType, Schema


def parse(text: str, schema: Schema) -> Node | None:
    """The AST of a filter, or None for an empty one; raises InvalidArgument on `filter`."""
    if len(text) > schema.max_chars:
        raise InvalidArgument.of("filter", f"is {len(text)} characters, at most {schema.max_chars}")
    return _Parser(text, schema).parse()


class _Parser:
    def __init__(self, text: str, schema: Schema) -> None:
        self.schema = schema
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

    def parse(self) -> Node | None:
        if self.token.kind == "end":
            return None
        node = self.expr()
        if self.token.kind != "end":
            raise self.fail("AND, OR or end of filter")
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
        if self.depth > self.schema.max_depth:
            raise self.fail(f"at most {self.schema.max_depth} nested NOTs and parentheses")
        try:
            if self.keyword("not") or self.token.is_punct("-"):
                self.advance()
                return Not(self.factor())
            if self.token.is_punct("("):
                self.advance()
                node = self.expr()
                if not self.token.is_punct(")"):
                    raise self.fail("AND, OR or ')'")
                self.advance()
                return node
            return self.restriction()
        finally:
            self.depth -= 1

    def field(self) -> tuple[Field, FieldSpec]:
        token = self.token
        expected = f"a field ({self.schema.field_list})"
        if token.kind != "ident":
            raise self.fail(expected)
        head, dot, key = token.text.partition(".")
        spec = self.schema.get(head)
        if spec is None or bool(dot) != spec.is_map:
            raise self.fail(expected)
        if spec.key_pattern is not None and not spec.key_pattern.fullmatch(key):
            raise ParseError(
                token.position + len(head) + 1, f"a key matching {spec.key_pattern.pattern}", repr(key)
            )
        self.advance()
        return Field(head, key), spec

    def restriction(self) -> Node:
        field, spec = self.field()
        op_token = self.token
        negated = False
        if self.keyword("not"):
            self.advance()
            negated = True
            if not self.keyword("in", "like", "ilike"):
                raise self.fail("IN, LIKE or ILIKE after NOT")
        node: Node
        if self.keyword("in"):
            self.allow(spec, "in", op_token)
            self.advance()
            if not self.token.is_punct("("):
                raise self.fail("'('")
            self.advance()
            values = [self.value(spec)]
            while self.token.is_punct(","):
                self.advance()
                if len(values) >= self.schema.max_in_values:
                    raise self.fail(f"')' (at most {self.schema.max_in_values} values in IN)")
                values.append(self.value(spec))
            if not self.token.is_punct(")"):
                raise self.fail("',' or ')'")
            self.advance()
            node = In(field, tuple(values))
        elif self.keyword("like", "ilike"):
            insensitive = self.token.text.lower() == "ilike"
            self.allow(spec, "like", op_token)
            self.advance()
            pattern_token = self.token
            if pattern_token.kind != "string":
                raise self.fail("a quoted pattern")
            self.advance()
            pattern = unquote(pattern_token)
            if _ends_in_escape(pattern):
                raise ParseError(
                    pattern_token.position, "a pattern that does not end in a lone backslash", repr(pattern)
                )
            node = Like(field, pattern, insensitive)
        elif op_token.kind == "op" and op_token.text == ":":
            self.allow(spec, ":", op_token)
            self.advance()
            node = self.has(field, spec)
        elif op_token.kind == "op":
            self.allow(spec, op_token.text, op_token)
            self.advance()
            value = self.value(spec)
            if value.kind is LiteralKind.BOOL and op_token.text not in EQUALITY_OPS:
                raise ParseError(op_token.position, f"= or != before {value.text}", repr(op_token.text))
            node = Compare(field, op_token.text, value)
        else:
            raise self.fail(literals.operators(spec))
        return Not(node) if negated else node

    def has(self, field: Field, spec: FieldSpec) -> Node:
        token = self.token
        if spec.is_map:
            if not token.is_punct("*"):
                raise self.fail("'*'")
            self.advance()
            return Exists(field)
        if token.kind != "string":
            raise self.fail("a quoted string")
        self.advance()
        value = unquote(token)
        if spec.type is FieldType.FULL_TEXT and not value.strip():
            raise ParseError(token.position, "some words to search for", repr(token.text))
        return Has(field, value)

    def value(self, spec: FieldSpec) -> Literal:
        literal = literals.value(spec, self.token)
        self.advance()
        return literal

    def allow(self, spec: FieldSpec, op: str, token: Token) -> None:
        if not spec.allows(op):
            raise ParseError(token.position, literals.operators(spec), token.describe())


def _ends_in_escape(pattern: str) -> bool:
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1

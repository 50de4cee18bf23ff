"""The filter parser and order_by: the AST for good input, position + expectation for bad."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from modelreg.catalog.domain.filters import SortKey, parse_filter, parse_order_by
from modelreg.errors import InvalidArgument
from modelreg.filtering import (
    And,
    Compare,
    Exists,
    Field,
    Has,
    In,
    Like,
    Literal,
    LiteralKind,
    Not,
    Or,
    ParseError,
)

NAME = Field("name")


def s(text: str) -> Literal:
    return Literal(LiteralKind.STRING, text, text)


def test_empty_filter_is_none() -> None:
    assert parse_filter("") is None
    assert parse_filter("   ") is None


def test_precedence_and_before_or_not_binds_tightest() -> None:
    ast = parse_filter('name = "a" OR name = "b" AND NOT name = "c"')
    assert ast == Or(
        (
            Compare(NAME, "=", s("a")),
            And((Compare(NAME, "=", s("b")), Not(Compare(NAME, "=", s("c"))))),
        )
    )
    assert parse_filter('(name = "a" or name = "b") and name != "c"') == And(
        (Or((Compare(NAME, "=", s("a")), Compare(NAME, "=", s("b")))), Compare(NAME, "!=", s("c")))
    )


def test_literals_are_typed() -> None:
    prop = Field("properties", "acc")
    ast = parse_filter("properties.acc >= 0.5 and properties.acc IN (1, true, 2026-01-01T00:00:00.5Z, 'x')")
    assert isinstance(ast, And)
    assert ast.operands[0] == Compare(prop, ">=", Literal(LiteralKind.NUMBER, Decimal("0.5"), "0.5"))
    assert isinstance(ast.operands[1], In)
    values = ast.operands[1].values
    assert [v.kind for v in values] == [
        LiteralKind.NUMBER,
        LiteralKind.BOOL,
        LiteralKind.TIMESTAMP,
        LiteralKind.STRING,
    ]
    assert values[2].value == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)


def test_strings_fields_take_any_literal_as_text_and_times_take_quoted_rfc3339() -> None:
    assert parse_filter("tags.version = 2") == Compare(Field("tags", "version"), "=", s("2"))
    ast = parse_filter('create_time > "2026-01-01T01:00:00+01:00"')
    assert isinstance(ast, Compare)
    assert ast.value.value == datetime(2026, 1, 1, tzinfo=UTC)


def test_like_in_has_text_and_state() -> None:
    assert parse_filter("name NOT ILIKE 'Ch%'") == Not(Like(NAME, "Ch%", True))
    assert parse_filter('tags.team not in ("a")') == Not(In(Field("tags", "team"), (s("a"),)))
    assert parse_filter("tags.team:*") == Exists(Field("tags", "team"))
    assert parse_filter('owners:"alice"') == Has(Field("owners"), "alice")
    assert parse_filter('text:"churn model"') == Has(Field("text"), "churn model")
    ast = parse_filter("state = STATE_ARCHIVED")
    assert isinstance(ast, Compare) and ast.value.value == "archived"
    assert parse_filter(r'name = "a\"b"') == Compare(NAME, "=", s('a"b'))


ERRORS = [
    ("name = ", 7, "a value"),
    ('name = "a" name', 11, "AND, OR or end of filter"),
    ('(name = "a"', 11, "AND, OR or ')'"),
    ("foo = 1", 0, "a field"),
    ("tags.Bad = 1", 5, "a key matching"),
    ("state < ACTIVE", 6, "an operator for state"),
    ("state = RUNNING", 8, "a state"),
    ("properties.p < true", 13, "= or != before true"),
    ('name = "abc', 7, 'a closing "'),
    ('create_time > "yesterday"', 14, "an RFC 3339 timestamp"),
    ("tags.x LIKE 3", 12, "a quoted pattern"),
    ("tags.x IN (1 2)", 13, "',' or ')'"),
    ("name NOT = 1", 9, "IN, LIKE or ILIKE after NOT"),
    ("owners = 'a'", 7, "an operator for owners"),
    ("tags.x:'a'", 7, "'*'"),
    ("name = 1 AND", 12, "a field"),
    ("name = 1 # 2", 9, "a field, value, operator or parenthesis"),
    ("name LIKE 'a\\\\\\'", 10, "a closing '"),
    ("name LIKE 'ab\\\\'", 10, "does not end in a lone backslash"),
]


@pytest.mark.parametrize(("text", "position", "expected"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_position_and_expectation(text: str, position: int, expected: str) -> None:
    with pytest.raises(ParseError) as error:
        parse_filter(text)
    assert error.value.position == position, error.value
    assert expected in error.value.expected, error.value
    violation = error.value.violations[0]
    assert violation.field == "filter"
    assert f"at position {position}" in violation.description
    assert "expected" in violation.description


def test_limits() -> None:
    with pytest.raises(InvalidArgument, match="at most 4096"):
        parse_filter("name = 'a' OR " * 400)
    with pytest.raises(ParseError, match="nested"):
        parse_filter("NOT " * 40 + "name = 'a'")
    with pytest.raises(ParseError, match="at most 100"):
        parse_filter("name IN (" + ", ".join(["'a'"] * 101) + ")")


def test_order_by() -> None:
    assert parse_order_by("").keys == ((SortKey.NAME, False),)
    assert parse_order_by("update_time").keys == ((SortKey.UPDATE_TIME, False), (SortKey.NAME, False))
    assert parse_order_by("name desc, create_time").keys == ((SortKey.NAME, True),)
    assert parse_order_by(" create_time DESC , name ").keys == (
        (SortKey.CREATE_TIME, True),
        (SortKey.NAME, False),
    )
    for bad in ("size", "name sideways", "name,", "name, name", "create_time desc asc"):
        with pytest.raises(InvalidArgument) as error:
            parse_order_by(bad)
        assert error.value.violations[0].field == "order_by"

"""The shared filter language: tokens, parse errors with positions, and the SQL of each field type."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from modelreg.catalog.adapters import filter_columns as catalog_columns
from modelreg.catalog.domain import filters as catalog_filters
from modelreg.errors import InvalidArgument
from modelreg.filtering import (
    Compiler,
    FieldSpec,
    FieldType,
    ParseError,
    Schema,
    compile_filter,
    parse,
)
from modelreg.filtering.lexer import tokenize
from modelreg.lineage.adapters import filter_columns as lineage_columns
from modelreg.lineage.domain import filters as lineage_filters
from modelreg.promotion.adapters import filter_columns as promotion_columns
from modelreg.promotion.domain import filters as promotion_filters
from modelreg.versioning.adapters import filter_columns as versioning_columns
from modelreg.versioning.domain import filters as versioning_filters

SCHEMA = Schema(
    (
        FieldSpec("name", FieldType.STRING, prefix_index=True),
        FieldSpec("note", FieldType.STRING, ("=", "!="), nullable=True),
        FieldSpec("count", FieldType.INT, minimum=0),
        FieldSpec("score", FieldType.DOUBLE),
        FieldSpec("done", FieldType.BOOL),
        FieldSpec("at", FieldType.TIMESTAMP),
        FieldSpec("state", FieldType.ENUM, values={"OPEN": "open", "SHUT": "shut"}),
        FieldSpec("semver", FieldType.ROW, parse_row=lambda s: (1, 2) if s == "1.2" else None),
        FieldSpec("tags", FieldType.STRING_MAP, key_pattern=re.compile(r"^[a-z]+$")),
        FieldSpec("props", FieldType.TYPED_MAP),
        FieldSpec("owners", FieldType.STRING_LIST),
        FieldSpec("text", FieldType.FULL_TEXT),
    ),
    max_chars=200,
    max_depth=4,
)
COLUMNS = {
    "name": "t.name",
    "note": "t.note",
    "count": "t.count",
    "score": "t.score",
    "done": "t.done",
    "at": "t.at",
    "state": "t.state",
    "semver": "(t.a, t.b)",
    "tags": "t.tags",
    "props": "t.props",
    "owners": "t.owners",
    "text": "t.search",
}


def sql(text: str) -> tuple[str, list[object]]:
    node = parse(text, SCHEMA)
    assert node is not None
    params: list[object] = ["outer"]
    return compile_filter(node, SCHEMA, COLUMNS, params), params[1:]


def test_tokens_keep_their_positions_and_words_starting_with_digits_stay_whole() -> None:
    tokens = tokenize("semver >= 1.2.0 AND -x = 'a b'")
    assert [(t.kind, t.text, t.position) for t in tokens] == [
        ("ident", "semver", 0),
        ("op", ">=", 7),
        ("word", "1.2.0", 10),
        ("keyword", "AND", 16),
        ("punct", "-", 20),
        ("ident", "x", 21),
        ("op", "=", 23),
        ("string", "'a b'", 25),
        ("end", "", 30),
    ]
    assert [t.kind for t in tokenize("-1 2026-01-01T00:00:00Z")][:2] == ["number", "timestamp"]


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("count = 1.5", 8, "a whole number of at least 0"),
        ("count = -1", 8, "a whole number of at least 0"),
        ("score = 'x'", 8, "a number"),
        ("done = 1", 7, "true or false"),
        ("done < true", 5, "an operator for done (= != IN)"),
        ("at >= 5", 6, "an RFC 3339 timestamp"),
        ("state = CLOSED", 8, "a state: OPEN or SHUT"),
        ("semver > 1.3", 9, "a value for semver"),
        ("note < 'a'", 5, "an operator for note (= !=)"),
        ("count LIKE 'a%'", 6, "an operator for count"),
        ("owners = 'a'", 7, "an operator for owners (':')"),
        ("text:''", 5, "some words to search for"),
        ("tags.UP = 'a'", 5, "a key matching"),
        ("tags = 'a'", 0, "a field (name, note, count, score, done, at, state, semver, tags.<key>"),
        ("nope = 1", 0, "a field"),
        ("name = 'a' OR", 13, "a field"),
        ("NOT NOT NOT NOT name = 'a'", 16, "at most 4 nested"),
        ("name ~ 'a'", 5, "a field, value, operator or parenthesis"),
        ("(name = 'a'", 11, "AND, OR or ')'"),
        ("name = 'a' )", 11, "AND, OR or end of filter"),
        ("props.x < false", 8, "= or != before false"),
    ],
)
def test_type_and_syntax_errors_name_the_position_and_the_expectation(
    text: str, position: int, expected: str
) -> None:
    with pytest.raises(ParseError) as error:
        parse(text, SCHEMA)
    assert (error.value.position, error.value.violations[0].field) == (position, "filter")
    assert error.value.violations[0].description.startswith(f"at position {position}: expected {expected}")


def test_too_long_a_filter_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="at most 200"):
        parse("name = 'a' OR " * 20, SCHEMA)


def test_scalar_fields_compile_to_typed_parameters() -> None:
    assert sql("count <= 3") == ("t.count <= $2::bigint", [3])
    assert sql("score > 0.5") == ("t.score > $2::double precision", [Decimal("0.5")])
    assert sql("done = true") == ("t.done = $2::boolean", [True])
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert sql('at >= "2026-01-01T01:00:00+01:00"') == ("t.at >= $2::timestamptz", [when])
    assert sql("state != SHUT") == ("t.state <> $2::text", ["shut"])
    assert sql("semver < 1.2") == ("(t.a, t.b) < ($2::bigint, $3::bigint)", [1, 2])
    assert sql("note = 10") == ("COALESCE(t.note = $2::text, false)", ["10"])


def test_boolean_structure_and_in() -> None:
    assert sql("NOT (count = 1 OR count IN (2, 3)) AND name = x") == (
        "(NOT ((t.count = $2::bigint) OR ((t.count = $3::bigint) OR (t.count = $4::bigint))))"
        " AND (t.name = $5::text)",
        [1, 2, 3, "x"],
    )


def test_like_adds_the_prefix_range_only_where_an_index_serves_it() -> None:
    assert sql("name LIKE 'ab%'") == (
        "(t.name >= $3::text AND t.name < $4::text AND COALESCE(t.name LIKE $2::text, false))",
        ["ab%", "ab", "ac"],
    )
    assert sql("name ILIKE 'ab%'") == ("COALESCE(t.name ILIKE $2::text, false)", ["ab%"])


def test_maps_lists_and_full_text() -> None:
    assert sql("tags.team = 'a'") == ("t.tags @> jsonb_build_object($2::text, $3::text)", ["team", "a"])
    assert sql("tags.team < 'b'") == (
        'COALESCE((t.tags ->> $2::text) COLLATE "C" < $3::text, false)',
        ["team", "b"],
    )
    assert sql("tags.team:*") == ("t.tags ? $2::text", ["team"])
    assert sql("props.acc >= 1") == (
        "COALESCE((t.props -> $2::text ->> 'n')::numeric >= $3::numeric, false)",
        ["acc", Decimal(1)],
    )
    assert sql("props.acc = 'hi'") == (
        "t.props @> jsonb_build_object($2::text, jsonb_build_object('s', $3::text))",
        ["acc", "hi"],
    )
    assert sql("owners:'bob'") == ("t.owners @> jsonb_build_array($2::text)", ["bob"])
    assert sql("text:'churn model'") == (
        "t.search @@ websearch_to_tsquery('english'::regconfig, $2::text)",
        ["churn model"],
    )


def test_a_map_where_absent_keys_are_unequal() -> None:
    schema = Schema((FieldSpec("tags", FieldType.STRING_MAP, absent_is_unequal=True),))
    node = parse("tags.k != 'v'", schema)
    assert node is not None
    params: list[object] = []
    assert (
        compile_filter(node, schema, {"tags": "t.tags"}, params)
        == "(t.tags ->> $1::text) IS DISTINCT FROM $2::text"
    )


def test_a_schema_field_without_a_column_is_a_programming_error_naming_it() -> None:
    with pytest.raises(ValueError, match="no column for the filter field\\(s\\) score, done"):
        Compiler(SCHEMA, {k: v for k, v in COLUMNS.items() if k not in ("score", "done")})


@pytest.mark.parametrize(
    ("schema", "columns"),
    [
        (catalog_filters.FILTER, catalog_columns.FILTER),
        (versioning_filters.FILTER, versioning_columns.FILTER),
        (lineage_filters.FILTER, lineage_columns.FILTER),
        (promotion_filters.REQUESTS, promotion_columns.REQUESTS),
        (promotion_filters.HISTORY, promotion_columns.HISTORY),
        (promotion_filters.DENIALS, promotion_columns.DENIALS),
    ],
    ids=["catalog", "versioning", "lineage", "promotion-requests", "promotion-history", "promotion-denials"],
)
def test_every_service_stores_exactly_the_fields_its_filter_schema_names(
    schema: Schema, columns: Mapping[str, str]
) -> None:
    assert sorted(columns) == sorted(spec.name for spec in schema.fields)
    Compiler(schema, columns)

"""The ListModelVersions filter parser: structure, types and errors naming `filter`."""

from __future__ import annotations

import pytest

from modelreg.errors import InvalidArgument
from modelreg.filtering import And, Compare, Exists, Field, Literal, LiteralKind, Not, Or
from modelreg.versioning.domain.filters import parse_filter
from modelreg.versioning.domain.values import SemVer


def s(text: str) -> Literal:
    return Literal(LiteralKind.STRING, text, text)


def test_precedence_and_types() -> None:
    assert parse_filter("") is None
    assert parse_filter('tags.k1 = "v3"') == Compare(Field("tags", "k1"), "=", s("v3"))
    ready = Literal(LiteralKind.ENUM, "ready", "READY")
    assert parse_filter("tags.a = x OR tags.b = y AND NOT state = READY") == Or(
        (
            Compare(Field("tags", "a"), "=", s("x")),
            And((Compare(Field("tags", "b"), "=", s("y")), Not(Compare(Field("state"), "=", ready)))),
        )
    )
    assert parse_filter('(semver >= "1.2.0") AND version < 10 AND params.lr:*') == And(
        (
            Compare(Field("semver"), ">=", Literal(LiteralKind.ROW, (1, 2, 0), "1.2.0")),
            Compare(Field("version"), "<", Literal(LiteralKind.INT, 10, "10")),
            Exists(Field("params", "lr")),
        )
    )
    deprecated = Literal(LiteralKind.ENUM, "deprecated", "STATE_DEPRECATED")
    assert parse_filter("state = STATE_DEPRECATED") == Compare(Field("state"), "=", deprecated)
    assert parse_filter(r'tags.q = "say \"hi\""') == Compare(Field("tags", "q"), "=", s('say "hi"'))
    assert parse_filter("-tags.a = b") == Not(Compare(Field("tags", "a"), "=", s("b")))
    assert parse_filter("semver < v1.4.0") == Compare(
        Field("semver"), "<", Literal(LiteralKind.ROW, (1, 4, 0), "v1.4.0")
    )


@pytest.mark.parametrize(
    "text",
    [
        "tags.k1 =",
        "tags = x",
        "owner = x",
        "state < READY",
        "state = GONE",
        "semver = 1.2",
        "version = -1",
        "framework:*",
        "(tags.a = b",
        "tags.a = b c",
        "tags.a = b AND",
        "tags.a ~ b",
        "NOT " * 40 + "tags.a = b",
        "tags.a = " + "x" * 3000,
    ],
)
def test_bad_filters_name_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_filter(text)
    assert "filter" in str(error.value.violations if hasattr(error.value, "violations") else error.value)


def test_stage_and_alias_references() -> None:
    from modelreg.versioning.domain.names import parse_reference
    from modelreg.versioning.domain.queries import Reference

    model = "namespaces/ns/models/m"
    assert parse_reference(f"{model}@production") == Reference(model, pointer="PRODUCTION")
    assert parse_reference(f"{model}@Staging") == Reference(model, pointer="STAGING")
    assert parse_reference(f"{model}@champion") == Reference(model, pointer="champion")
    assert parse_reference(f"{model}@v1.2.0") == Reference(model, semver=SemVer(1, 2, 0))
    for bad in (f"{model}@Champion!", f"{model}@deployment:prod#3", f"{model}@v1.x", f"{model}@1.2"):
        with pytest.raises(InvalidArgument):
            parse_reference(bad)

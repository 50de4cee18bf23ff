"""The ListModelVersions filter parser: structure, types and errors naming `filter`."""

from __future__ import annotations

import pytest

from modelreg.errors import InvalidArgument
from modelreg.versioning.domain.model import SemVer, Status
from modelreg.versioning.domain.query import And, Compare, Has, Not, Or, parse_filter


def test_precedence_and_types() -> None:
    assert parse_filter("") is None
    assert parse_filter('tags.k1 = "v3"') == Compare("tags", "k1", "=", "v3")
    assert parse_filter("tags.a = x OR tags.b = y AND NOT state = READY") == Or(
        (
            Compare("tags", "a", "=", "x"),
            And((Compare("tags", "b", "=", "y"), Not(Compare("state", "", "=", Status.READY)))),
        )
    )
    assert parse_filter('(semver >= "1.2.0") AND version < 10 AND params.lr:*') == And(
        (
            Compare("semver", "", ">=", SemVer(1, 2, 0)),
            Compare("version", "", "<", 10),
            Has("params", "lr"),
        )
    )
    assert parse_filter("state = STATE_DEPRECATED") == Compare("state", "", "=", Status.DEPRECATED)
    assert parse_filter(r'tags.q = "say \"hi\""') == Compare("tags", "q", "=", 'say "hi"')


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
    from modelreg.versioning.domain.model import Reference
    from modelreg.versioning.domain.names import parse_reference

    model = "namespaces/ns/models/m"
    assert parse_reference(f"{model}@production") == Reference(model, pointer="PRODUCTION")
    assert parse_reference(f"{model}@Staging") == Reference(model, pointer="STAGING")
    assert parse_reference(f"{model}@champion") == Reference(model, pointer="champion")
    assert parse_reference(f"{model}@v1.2.0") == Reference(model, semver=SemVer(1, 2, 0))
    for bad in (f"{model}@Champion!", f"{model}@deployment:prod#3", f"{model}@v1.x", f"{model}@1.2"):
        with pytest.raises(InvalidArgument):
            parse_reference(bad)

from __future__ import annotations

import pytest

from modelreg.client import ModelUri, parse_uri


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("modelreg://ns/churn", ModelUri("ns", "churn")),
        ("ns/churn", ModelUri("ns", "churn")),
        ("modelreg://ns/churn/3", ModelUri("ns", "churn", version=3)),
        ("modelreg://ns/churn@production", ModelUri("ns", "churn", reference="production")),
        ("modelreg://ns/churn@v1.2.0", ModelUri("ns", "churn", reference="v1.2.0")),
        ("modelreg://ns/churn@v1.latest", ModelUri("ns", "churn", reference="v1.latest")),
    ],
)
def test_uris_parse(text: str, expected: ModelUri) -> None:
    assert parse_uri(text) == expected
    assert parse_uri(str(expected)) == expected


@pytest.mark.parametrize(
    "text", ["", "churn", "modelreg://ns", "ns/churn/0", "ns/Churn", "ns/churn@", "http://ns/m"]
)
def test_bad_uris_are_rejected_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="modelreg://namespace/model"):
        parse_uri(text)

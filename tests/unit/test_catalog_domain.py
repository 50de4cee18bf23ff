from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelreg.catalog.application.use_cases import decode_page_token, encode_page_token
from modelreg.catalog.domain.model import (
    CreateRegisteredModel,
    EventMeta,
    ModelState,
    RegisteredModelCreated,
    decide,
    evolve,
)
from modelreg.catalog.domain.names import ModelName, parse_model_name, parse_parent
from modelreg.errors import AlreadyExists, InvalidArgument

NAME = ModelName("ns", "churn")


def test_create_decides_a_created_event_and_evolves_into_an_active_model() -> None:
    event = decide(None, CreateRegisteredModel(NAME, "d", {"team": "a"}))
    assert event == RegisteredModelCreated(NAME, "d", {"team": "a"})
    at = datetime(2026, 1, 1, tzinfo=UTC)
    model = evolve(None, event, EventMeta(at, "alice", 1))
    assert model.state is ModelState.ACTIVE
    assert (model.created_by, model.create_time, model.revision) == ("alice", at, 1)


def test_creating_an_existing_model_is_already_exists() -> None:
    model = evolve(None, RegisteredModelCreated(NAME, "", {}), EventMeta(datetime.now(UTC), "a", 1))
    with pytest.raises(AlreadyExists):
        decide(model, CreateRegisteredModel(NAME))


@pytest.mark.parametrize(
    "name",
    [
        "",
        "namespaces/ns",
        "namespaces/ns/models/",
        "namespaces/NS/models/m",
        "ns/models/m",
        "namespaces/ns/models/m/versions/1",
        "namespaces/ns/models/" + "m" * 129,
    ],
)
def test_malformed_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_model_name(name)
    assert error.value.violations[0].field == "name"


def test_well_formed_names_parse() -> None:
    assert parse_model_name("namespaces/a.b/models/c_d-1") == ModelName("a.b", "c_d-1")
    assert parse_parent("namespaces/x") == "x"


def test_limits_name_the_offending_field() -> None:
    with pytest.raises(InvalidArgument) as error:
        CreateRegisteredModel(NAME, description="é" * 40_000)
    assert error.value.violations[0].field == "registered_model.description"
    with pytest.raises(InvalidArgument) as error:
        CreateRegisteredModel(NAME, tags={"ok": "x" * 1025})
    assert error.value.violations[0].field.startswith("registered_model.tags")


def test_page_tokens_round_trip_and_are_bound_to_their_namespace() -> None:
    token = encode_page_token("ns", "m-7")
    assert decode_page_token(token, "ns") == "m-7"
    with pytest.raises(InvalidArgument):
        decode_page_token(token, "other")
    with pytest.raises(InvalidArgument):
        decode_page_token("not a token", "ns")

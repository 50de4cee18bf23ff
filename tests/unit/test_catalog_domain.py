from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modelreg.catalog.domain.commands import (
    ArchiveRegisteredModel,
    CreateNamespace,
    CreateRegisteredModel,
    DeleteRegisteredModel,
    ModelCommand,
    RestoreRegisteredModel,
    UpdateRegisteredModel,
)
from modelreg.catalog.domain.decide import decide_model, decide_namespace
from modelreg.catalog.domain.events import (
    RegisteredModelArchived,
    RegisteredModelCreated,
    RegisteredModelDeleted,
    RegisteredModelRestored,
    RegisteredModelUpdated,
)
from modelreg.catalog.domain.evolve import evolve_model, evolve_namespace
from modelreg.catalog.domain.state import RegisteredModel
from modelreg.catalog.domain.values import ModelFields, ModelState, Property, PropertyKind
from modelreg.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from modelreg.eventmeta import EventMeta
from modelreg.names import ModelName, parse_model_name, parse_parent
from modelreg.signatures import Signature, TensorSpec

NAME = ModelName("ns", "churn")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def active(**values: Any) -> RegisteredModel:
    created = RegisteredModelCreated(NAME, ModelFields(**values))
    return evolve_model(None, created, EventMeta(str(NAME), T0, "alice", 1))


def apply(state: RegisteredModel, command: ModelCommand, actor: str = "bob") -> RegisteredModel:
    return evolve_model(
        state, decide_model(state, command), EventMeta(str(NAME), T1, actor, state.revision + 1)
    )


def test_create_decides_a_created_event_and_evolves_into_an_active_model() -> None:
    values = ModelFields(description="d", tags={"team": "a"}, owners=("alice",))
    event = decide_model(None, CreateRegisteredModel(NAME, values))
    assert event == RegisteredModelCreated(NAME, values)
    model = evolve_model(None, event, EventMeta(str(NAME), T0, "alice", 1))
    assert model.state is ModelState.ACTIVE
    assert (model.created_by, model.create_time, model.revision, model.fields) == ("alice", T0, 1, values)


def test_creating_an_existing_or_deleted_model_is_already_exists() -> None:
    model = active()
    with pytest.raises(AlreadyExists):
        decide_model(model, CreateRegisteredModel(NAME))
    deleted = apply(model, DeleteRegisteredModel(NAME, "gone"))
    with pytest.raises(AlreadyExists, match="reserved"):
        decide_model(deleted, CreateRegisteredModel(NAME))


def test_update_changes_only_masked_fields_and_records_whole_values() -> None:
    model = active(description="old", annotations="keep", tags={"a": "1", "b": "2"})
    request = ModelFields(description="new", annotations="ignored", tags={"a": "9"})
    event = decide_model(model, UpdateRegisteredModel(NAME, request, ("description", "tags.a", "tags.b")))
    assert isinstance(event, RegisteredModelUpdated)
    assert event.fields == ("description", "tags")
    assert event.values.tags == {"a": "9"}  # tags.b removed: absent from the request's map
    updated = evolve_model(model, event, EventMeta(str(NAME), T1, "bob", 2))
    assert (updated.description, updated.fields.annotations, updated.tags) == ("new", "keep", {"a": "9"})
    assert (updated.update_time, updated.updated_by, updated.revision) == (T1, "bob", 2)
    assert (updated.create_time, updated.created_by) == (T0, "alice")


def test_update_validates_only_masked_fields_and_rejects_unknown_paths() -> None:
    too_long = ModelFields(description="x" * (64 * 1024 + 1))
    UpdateRegisteredModel(NAME, too_long, ("tags",))  # not masked: ignored
    with pytest.raises(InvalidArgument) as error:
        UpdateRegisteredModel(NAME, too_long, ("description",))
    assert error.value.violations[0].field == "registered_model.description"
    for path in ("bogus", "description.x", "owners.a", "tags.Bad Key"):
        with pytest.raises(InvalidArgument) as error:
            UpdateRegisteredModel(NAME, ModelFields(), (path,))
        assert error.value.violations[0].field.startswith("update_mask")


def test_merging_map_keys_still_enforces_the_count_limit() -> None:
    model = active(tags={f"k{i}": "v" for i in range(64)})
    with pytest.raises(InvalidArgument, match="at most 64"):
        decide_model(
            model, UpdateRegisteredModel(NAME, ModelFields(tags={"one-more": "v"}), ("tags.one-more",))
        )


def test_stale_etag_is_aborted_and_current_etag_passes() -> None:
    model = active()
    with pytest.raises(Aborted):
        decide_model(model, UpdateRegisteredModel(NAME, ModelFields(description="x"), ("description",), 7))
    assert decide_model(model, ArchiveRegisteredModel(NAME, expected_revision=1)) == RegisteredModelArchived(
        NAME
    )


def test_lifecycle_rules() -> None:
    model = active()
    with pytest.raises(FailedPrecondition):
        decide_model(model, RestoreRegisteredModel(NAME))
    archived = apply(model, ArchiveRegisteredModel(NAME))
    assert archived.state is ModelState.ARCHIVED
    with pytest.raises(FailedPrecondition):
        decide_model(archived, ArchiveRegisteredModel(NAME))
    with pytest.raises(FailedPrecondition):
        decide_model(archived, UpdateRegisteredModel(NAME, ModelFields(description="x"), ("description",)))
    assert decide_model(archived, RestoreRegisteredModel(NAME)) == RegisteredModelRestored(NAME)
    assert decide_model(archived, DeleteRegisteredModel(NAME, "why")) == RegisteredModelDeleted(NAME, "why")
    deleted = apply(archived, DeleteRegisteredModel(NAME, "why"))
    assert deleted.state is ModelState.DELETED
    for command in (
        ArchiveRegisteredModel(NAME),
        RestoreRegisteredModel(NAME),
        DeleteRegisteredModel(NAME),
        UpdateRegisteredModel(NAME, ModelFields(description="x"), ("description",)),
    ):
        with pytest.raises(NotFound):
            decide_model(deleted, command)
        with pytest.raises(NotFound):
            decide_model(None, command)


def test_typed_fields_are_validated() -> None:
    bad = [
        (
            "registered_model.properties",
            ModelFields(properties={"x": Property(PropertyKind.DOUBLE, float("nan"))}),
        ),
        (
            "registered_model.properties",
            ModelFields(properties={"x": Property(PropertyKind.STRING, "s" * 1025)}),
        ),
        ("registered_model.properties", ModelFields(properties={"Bad": Property(PropertyKind.INT, 1)})),
        ("registered_model.owners", ModelFields(owners=("a", "a"))),
        ("registered_model.owners", ModelFields(owners=("has space",))),
        ("registered_model.annotations", ModelFields(annotations="a" * (64 * 1024 + 1))),
        (
            "registered_model.signature.inputs[1].name",
            ModelFields(signature=Signature((TensorSpec("x", "float32"), TensorSpec("x", "int64")))),
        ),
        (
            "registered_model.signature.outputs[0].dtype",
            ModelFields(signature=Signature((), (TensorSpec("y", ""),))),
        ),
        (
            "registered_model.signature.inputs[0].shape",
            ModelFields(signature=Signature((TensorSpec("x", "float32", (-2,)),))),
        ),
    ]
    for field, values in bad:
        with pytest.raises(InvalidArgument) as error:
            CreateRegisteredModel(NAME, values)
        assert error.value.violations[0].field.startswith(field), (field, error.value)


def test_namespaces_are_created_once() -> None:
    event = decide_namespace(None, CreateNamespace("ns", "d", implicit=True))
    namespace = evolve_namespace(None, event, EventMeta("namespaces/ns", T0, "alice", 1))
    assert (namespace.name, namespace.implicit, namespace.created_by) == ("ns", True, "alice")
    with pytest.raises(AlreadyExists):
        decide_namespace(namespace, CreateNamespace("ns"))


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
        CreateRegisteredModel(NAME, ModelFields(description="é" * 40_000))
    assert error.value.violations[0].field == "registered_model.description"
    with pytest.raises(InvalidArgument) as error:
        CreateRegisteredModel(NAME, ModelFields(tags={"ok": "x" * 1025}))
    assert error.value.violations[0].field.startswith("registered_model.tags")

"""The registered-model and namespace aggregates, in the functional style: decide and evolve.

Pure: no I/O, no gRPC, no protos. `decide` turns a command and the current
state into the event that records it, or raises; `evolve` folds an event into
the state. The projection uses the same `evolve`, so what a command saw and
what the read model holds are one definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from modelreg.catalog.domain.names import (
    MAX_ANNOTATIONS_BYTES,
    MAX_PROPERTIES,
    MAX_PROPERTY_STRING_BYTES,
    MAX_REASON_BYTES,
    check_description,
    check_key,
    check_owners,
    check_tags,
)
from modelreg.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from modelreg.eventmeta import EventMeta
from modelreg.names import ModelName
from modelreg.signatures import Signature, check_signature


class ModelState(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DELETED = "deleted"


class PropertyKind(StrEnum):
    STRING = "string"
    INT = "int"
    DOUBLE = "double"
    BOOL = "bool"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True, slots=True)
class Property:
    """A typed value; the kind is explicit because Python's bool is an int."""

    kind: PropertyKind
    value: str | int | float | bool | datetime


@dataclass(frozen=True, slots=True)
class ModelFields:
    """The client-writable part of a model: what Create sets and Update changes."""

    description: str = ""
    annotations: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Property] = field(default_factory=dict)
    signature: Signature | None = None
    owners: tuple[str, ...] = ()


UPDATABLE_FIELDS = ("description", "annotations", "tags", "properties", "signature", "owners")
MAP_FIELDS = ("tags", "properties")
OUTPUT_ONLY_FIELDS = ("name", "state", "create_time", "update_time", "created_by", "updated_by", "etag")


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: ModelName
    fields: ModelFields
    state: ModelState
    create_time: datetime
    update_time: datetime
    created_by: str
    updated_by: str
    revision: int

    # Shorthands, so callers need not know how fields are grouped.
    @property
    def description(self) -> str:
        return self.fields.description

    @property
    def tags(self) -> dict[str, str]:
        return self.fields.tags


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    description: str
    implicit: bool
    create_time: datetime
    created_by: str
    revision: int


# Validation -----------------------------------------------------------------


def check_fields(values: ModelFields, prefix: str, only: tuple[str, ...] = UPDATABLE_FIELDS) -> None:
    """Every limit on the writable fields named in `only`; errors name `prefix.<field>`."""
    if "description" in only:
        check_description(values.description, f"{prefix}.description")
    if "annotations" in only:
        check_description(values.annotations, f"{prefix}.annotations", MAX_ANNOTATIONS_BYTES)
    if "tags" in only:
        check_tags(values.tags, f"{prefix}.tags")
    if "properties" in only:
        check_properties(values.properties, f"{prefix}.properties")
    if "signature" in only and values.signature is not None:
        check_signature(values.signature, f"{prefix}.signature")
    if "owners" in only:
        check_owners(values.owners, f"{prefix}.owners")


def check_properties(properties: dict[str, Property], field: str) -> None:
    if len(properties) > MAX_PROPERTIES:
        raise InvalidArgument.of(
            field, f"has {len(properties)} entries, at most {MAX_PROPERTIES} are allowed"
        )
    for key, prop in properties.items():
        check_key(key, field)
        where = f"{field}[{key!r}]"
        match prop.kind:
            case PropertyKind.STRING:
                assert isinstance(prop.value, str)
                if len(prop.value.encode()) > MAX_PROPERTY_STRING_BYTES:
                    raise InvalidArgument.of(where, f"is longer than {MAX_PROPERTY_STRING_BYTES} bytes")
            case PropertyKind.DOUBLE:
                # NaN has no order and would make every comparison in a filter lie.
                assert isinstance(prop.value, float)
                if not math.isfinite(prop.value):
                    raise InvalidArgument.of(where, "must be a finite number")


# Commands -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateRegisteredModel:
    name: ModelName
    values: ModelFields = field(default_factory=ModelFields)

    def __post_init__(self) -> None:
        check_fields(self.values, "registered_model")


@dataclass(frozen=True, slots=True)
class UpdateRegisteredModel:
    """Change the fields named by `paths` (AIP-134 mask paths, already expanded from `*`/empty)."""

    name: ModelName
    values: ModelFields
    paths: tuple[str, ...]
    expected_revision: int | None = None

    def __post_init__(self) -> None:
        if not self.paths:
            raise InvalidArgument.of("update_mask", "names no field to update")
        for path in self.paths:
            top, _, key = path.partition(".")
            if top not in UPDATABLE_FIELDS or (key and top not in MAP_FIELDS):
                raise InvalidArgument.of(
                    "update_mask",
                    f"unknown path {path[:200]!r}; updatable: {', '.join(UPDATABLE_FIELDS)}, "
                    "tags.<key>, properties.<key>",
                )
            if key:
                check_key(key, f"update_mask.{top}")
        # Only what the mask names is validated: the rest of the body is ignored.
        check_fields(self.values, "registered_model", tuple(p.partition(".")[0] for p in self.paths))


@dataclass(frozen=True, slots=True)
class ArchiveRegisteredModel:
    name: ModelName
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True)
class RestoreRegisteredModel:
    name: ModelName
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteRegisteredModel:
    name: ModelName
    reason: str = ""
    expected_revision: int | None = None

    def __post_init__(self) -> None:
        check_description(self.reason, "reason", MAX_REASON_BYTES)


@dataclass(frozen=True, slots=True)
class CreateNamespace:
    name: str
    description: str = ""
    implicit: bool = False

    def __post_init__(self) -> None:
        check_description(self.description, "namespace.description")


ModelCommand = (
    CreateRegisteredModel
    | UpdateRegisteredModel
    | ArchiveRegisteredModel
    | RestoreRegisteredModel
    | DeleteRegisteredModel
)


# Events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisteredModelCreated:
    name: ModelName
    values: ModelFields


@dataclass(frozen=True, slots=True)
class RegisteredModelUpdated:
    """`values` holds the complete new value of each top-level field in `fields`."""

    name: ModelName
    values: ModelFields
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RegisteredModelArchived:
    name: ModelName


@dataclass(frozen=True, slots=True)
class RegisteredModelRestored:
    name: ModelName


@dataclass(frozen=True, slots=True)
class RegisteredModelDeleted:
    name: ModelName
    reason: str


@dataclass(frozen=True, slots=True)
class NamespaceCreated:
    name: str
    description: str
    implicit: bool


ModelEvent = (
    RegisteredModelCreated
    | RegisteredModelUpdated
    | RegisteredModelArchived
    | RegisteredModelRestored
    | RegisteredModelDeleted
)
CatalogEvent = ModelEvent | NamespaceCreated


# Decide ---------------------------------------------------------------------


def decide(state: RegisteredModel | None, command: ModelCommand) -> ModelEvent:
    if isinstance(command, CreateRegisteredModel):
        if state is not None:
            # Also for a deleted model: its name stays reserved.
            raise AlreadyExists(f"{command.name} already exists" + _deleted_note(state))
        return RegisteredModelCreated(command.name, command.values)

    # Every other command needs a live model, and the caller's view of it when an etag was sent.
    if state is None or state.state is ModelState.DELETED:
        raise NotFound(f"{command.name} does not exist")
    if command.expected_revision is not None and command.expected_revision != state.revision:
        raise Aborted(
            f'{command.name} changed since etag W/"{command.expected_revision}" '
            f'(it is now W/"{state.revision}"); read it again and retry'
        )
    match command:
        case UpdateRegisteredModel():
            _require(state, ModelState.ACTIVE, "updated; restore it first")
            changed = resolve_update(state.fields, command.values, command.paths)
            return RegisteredModelUpdated(command.name, changed[0], changed[1])
        case ArchiveRegisteredModel():
            _require(state, ModelState.ACTIVE, "archived")
            return RegisteredModelArchived(command.name)
        case RestoreRegisteredModel():
            _require(state, ModelState.ARCHIVED, "restored")
            return RegisteredModelRestored(command.name)
        case DeleteRegisteredModel():
            return RegisteredModelDeleted(command.name, command.reason)
    raise TypeError(f"unknown command {command!r}")


def decide_namespace(state: Namespace | None, command: CreateNamespace) -> NamespaceCreated:
    if state is not None:
        raise AlreadyExists(f"namespaces/{command.name} already exists")
    return NamespaceCreated(command.name, command.description, command.implicit)


def resolve_update(
    current: ModelFields, request: ModelFields, paths: tuple[str, ...]
) -> tuple[ModelFields, tuple[str, ...]]:
    """The new complete values of the top-level fields the mask touches, and those fields.

    A map-key path (`tags.team`) sets that key from the request, or removes it
    when the request's map lacks it; the result is checked against the limits
    again because merging can exceed them (e.g. the 65th tag).
    """
    new = current
    touched: list[str] = []
    for path in paths:
        top, _, key = path.partition(".")
        if top not in touched:
            touched.append(top)
        if not key:
            new = replace(new, **{top: getattr(request, top)})
            continue
        merged = dict(getattr(new, top))
        source = getattr(request, top)
        if key in source:
            merged[key] = source[key]
        else:
            merged.pop(key, None)
        new = replace(new, **{top: merged})
    ordered = tuple(f for f in UPDATABLE_FIELDS if f in touched)
    check_fields(new, "registered_model", ordered)
    return new, ordered


def _require(state: RegisteredModel, wanted: ModelState, verb: str) -> None:
    if state.state is not wanted:
        raise FailedPrecondition(f"{state.name} is {state.state.value}: it cannot be {verb}")


def _deleted_note(state: RegisteredModel) -> str:
    return " (deleted; the name stays reserved)" if state.state is ModelState.DELETED else ""


# Evolve ---------------------------------------------------------------------


def evolve(state: RegisteredModel | None, event: ModelEvent, meta: EventMeta) -> RegisteredModel:
    if isinstance(event, RegisteredModelCreated):
        return RegisteredModel(
            name=event.name,
            fields=event.values,
            state=ModelState.ACTIVE,
            create_time=meta.occurred_at,
            update_time=meta.occurred_at,
            created_by=meta.actor,
            updated_by=meta.actor,
            revision=meta.revision,
        )
    assert state is not None, f"{type(event).__name__} before RegisteredModelCreated"
    touched = replace(state, update_time=meta.occurred_at, updated_by=meta.actor, revision=meta.revision)
    match event:
        case RegisteredModelUpdated():
            changes = {f: getattr(event.values, f) for f in event.fields}
            return replace(touched, fields=replace(state.fields, **changes))
        case RegisteredModelArchived():
            return replace(touched, state=ModelState.ARCHIVED)
        case RegisteredModelRestored():
            return replace(touched, state=ModelState.ACTIVE)
        case RegisteredModelDeleted():
            return replace(touched, state=ModelState.DELETED)
    raise TypeError(f"unknown event {event!r}")


def evolve_namespace(state: Namespace | None, event: NamespaceCreated, meta: EventMeta) -> Namespace:
    return Namespace(
        event.name, event.description, event.implicit, meta.occurred_at, meta.actor, meta.revision
    )

"""The registered-model aggregate, in the functional style: decide and evolve.

Pure: no I/O, no gRPC, no protos. `decide` turns a command and the current
state into the event that records it, or raises; `evolve` folds an event into
the state. The projection uses the same `evolve`, so what a command saw and
what the read model holds are one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from modelreg.catalog.domain.names import ModelName, check_description, check_tags
from modelreg.errors import AlreadyExists


class ModelState(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: ModelName
    description: str
    tags: dict[str, str]
    state: ModelState
    create_time: datetime
    update_time: datetime
    created_by: str
    updated_by: str
    revision: int


# Commands -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateRegisteredModel:
    name: ModelName
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_description(self.description, "registered_model.description")
        check_tags(self.tags, "registered_model.tags")


# Events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisteredModelCreated:
    name: ModelName
    description: str
    tags: dict[str, str]


CatalogEvent = RegisteredModelCreated


@dataclass(frozen=True, slots=True)
class EventMeta:
    """What the log adds to every event: when, by whom, and the resulting revision."""

    occurred_at: datetime
    actor: str
    revision: int


def decide(state: RegisteredModel | None, command: CreateRegisteredModel) -> CatalogEvent:
    match command:
        case CreateRegisteredModel():
            if state is not None:
                raise AlreadyExists(f"{command.name} already exists")
            return RegisteredModelCreated(command.name, command.description, dict(command.tags))
    raise TypeError(f"unknown command {command!r}")


def evolve(state: RegisteredModel | None, event: CatalogEvent, meta: EventMeta) -> RegisteredModel:
    match event:
        case RegisteredModelCreated():
            return RegisteredModel(
                name=event.name,
                description=event.description,
                tags=dict(event.tags),
                state=ModelState.ACTIVE,
                create_time=meta.occurred_at,
                update_time=meta.occurred_at,
                created_by=meta.actor,
                updated_by=meta.actor,
                revision=meta.revision,
            )
    assert state is not None
    return replace(state, update_time=meta.occurred_at, updated_by=meta.actor, revision=meta.revision)

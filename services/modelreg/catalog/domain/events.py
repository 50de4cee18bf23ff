"""The catalog's events, one frozen dataclass each: what a decided command recorded."""

from __future__ import annotations

from dataclasses import dataclass

from modelreg.catalog.domain.values import ModelFields
from modelreg.names import ModelName


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
NamespaceEvent = NamespaceCreated
Event = ModelEvent | NamespaceEvent

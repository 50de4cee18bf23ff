"""The immutable states of the two aggregates: a registered model and a namespace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelreg.catalog.domain.values import ModelFields, ModelState
from modelreg.names import ModelName


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

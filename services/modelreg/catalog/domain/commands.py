"""The catalog's commands, one frozen dataclass each, validated when built."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelreg.catalog.domain.values import (
    MAP_FIELDS,
    MAX_REASON_BYTES,
    UPDATABLE_FIELDS,
    ModelFields,
    check_description,
    check_fields,
    check_key,
)
from modelreg.errors import InvalidArgument
from modelreg.names import ModelName


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


ModelChange = UpdateRegisteredModel | ArchiveRegisteredModel | RestoreRegisteredModel | DeleteRegisteredModel
"""The commands on a model that exists."""
ModelCommand = CreateRegisteredModel | ModelChange
NamespaceCommand = CreateNamespace
Command = ModelCommand | NamespaceCommand

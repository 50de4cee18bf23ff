"""Decide: a command and the current state of its aggregate -> the one event that records it, or raise.

A command is exactly one event, so every command is atomic. The catalog has two
aggregates, each with its own entry point: a registered model and a namespace.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, assert_never

from modelreg.catalog.domain.commands import (
    ArchiveRegisteredModel,
    CreateNamespace,
    CreateRegisteredModel,
    DeleteRegisteredModel,
    ModelChange,
    ModelCommand,
    NamespaceCommand,
    RestoreRegisteredModel,
    UpdateRegisteredModel,
)
from modelreg.catalog.domain.events import (
    ModelEvent,
    NamespaceCreated,
    NamespaceEvent,
    RegisteredModelArchived,
    RegisteredModelCreated,
    RegisteredModelDeleted,
    RegisteredModelRestored,
    RegisteredModelUpdated,
)
from modelreg.catalog.domain.state import Namespace, RegisteredModel
from modelreg.catalog.domain.values import UPDATABLE_FIELDS, ModelFields, ModelState, check_fields
from modelreg.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound


def decide_model(state: RegisteredModel | None, command: ModelCommand) -> ModelEvent:
    match command:
        case CreateRegisteredModel():
            if state is not None:
                # Also for a deleted model: its name stays reserved.
                raise AlreadyExists(f"{command.name} already exists" + _deleted_note(state))
            return RegisteredModelCreated(command.name, command.values)
        case UpdateRegisteredModel():
            live = _live(state, command)
            _require(live, ModelState.ACTIVE, "updated; restore it first")
            values, fields = resolve_update(live.fields, command.values, command.paths)
            return RegisteredModelUpdated(command.name, values, fields)
        case ArchiveRegisteredModel():
            _require(_live(state, command), ModelState.ACTIVE, "archived")
            return RegisteredModelArchived(command.name)
        case RestoreRegisteredModel():
            _require(_live(state, command), ModelState.ARCHIVED, "restored")
            return RegisteredModelRestored(command.name)
        case DeleteRegisteredModel():
            _live(state, command)
            return RegisteredModelDeleted(command.name, command.reason)
        case _:
            assert_never(command)


def decide_namespace(state: Namespace | None, command: NamespaceCommand) -> NamespaceEvent:
    match command:
        case CreateNamespace():
            if state is not None:
                raise AlreadyExists(f"namespaces/{command.name} already exists")
            return NamespaceCreated(command.name, command.description, command.implicit)
        case _:
            assert_never(command)


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
        change: dict[str, Any] = {top: merged}
        new = replace(new, **change)
    ordered = tuple(f for f in UPDATABLE_FIELDS if f in touched)
    check_fields(new, "registered_model", ordered)
    return new, ordered


def _live(state: RegisteredModel | None, command: ModelChange) -> RegisteredModel:
    """The model a change needs: live, and as the caller saw it when an etag was sent."""
    if state is None or state.state is ModelState.DELETED:
        raise NotFound(f"{command.name} does not exist")
    if command.expected_revision is not None and command.expected_revision != state.revision:
        raise Aborted(
            f'{command.name} changed since etag W/"{command.expected_revision}" '
            f'(it is now W/"{state.revision}"); read it again and retry'
        )
    return state


def _require(state: RegisteredModel, wanted: ModelState, verb: str) -> None:
    if state.state is not wanted:
        raise FailedPrecondition(f"{state.name} is {state.state.value}: it cannot be {verb}")


def _deleted_note(state: RegisteredModel) -> str:
    return " (deleted; the name stays reserved)" if state.state is ModelState.DELETED else ""

"""Evolve: fold an event into its aggregate's state.

The projection folds with these same functions, so what a command saw and what
the read model holds are one definition.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

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
from modelreg.catalog.domain.values import ModelState
from modelreg.eventmeta import EventMeta


def evolve_model(state: RegisteredModel | None, event: ModelEvent, meta: EventMeta) -> RegisteredModel:
    match event:
        case RegisteredModelCreated():
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
        case RegisteredModelUpdated():
            touched = _touched(state, event, meta)
            changes = {f: getattr(event.values, f) for f in event.fields}
            return replace(touched, fields=replace(touched.fields, **changes))
        case RegisteredModelArchived():
            return replace(_touched(state, event, meta), state=ModelState.ARCHIVED)
        case RegisteredModelRestored():
            return replace(_touched(state, event, meta), state=ModelState.ACTIVE)
        case RegisteredModelDeleted():
            return replace(_touched(state, event, meta), state=ModelState.DELETED)
        case _:
            assert_never(event)


def evolve_namespace(state: Namespace | None, event: NamespaceEvent, meta: EventMeta) -> Namespace:
    match event:
        case NamespaceCreated():
            return Namespace(
                event.name, event.description, event.implicit, meta.occurred_at, meta.actor, meta.revision
            )
        case _:
            assert_never(event)


def _touched(state: RegisteredModel | None, event: ModelEvent, meta: EventMeta) -> RegisteredModel:
    """The model after any event but its creation: last updated by this event."""
    assert state is not None, f"{type(event).__name__} before RegisteredModelCreated"
    return replace(state, update_time=meta.occurred_at, updated_by=meta.actor, revision=meta.revision)

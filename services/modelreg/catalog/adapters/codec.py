"""Domain events <-> the protobuf payloads that travel in envelopes."""

from __future__ import annotations

from typing import assert_never

from google.protobuf.message import Message

from modelreg.catalog.domain.events import (
    Event,
    NamespaceCreated,
    RegisteredModelArchived,
    RegisteredModelCreated,
    RegisteredModelDeleted,
    RegisteredModelRestored,
    RegisteredModelUpdated,
)
from modelreg.catalog.domain.values import UPDATABLE_FIELDS
from modelreg.catalog.resources import fields_from_proto, fields_to_proto
from modelreg.gen.catalog.v1 import catalog_pb2, events_pb2
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.names import parse_model_name


def encode(event: Event) -> tuple[str, Message]:
    match event:
        case RegisteredModelCreated():
            model = catalog_pb2.RegisteredModel(name=str(event.name))
            fields_to_proto(event.values, model, UPDATABLE_FIELDS)
            return "registered_model_created", events_pb2.RegisteredModelCreated(registered_model=model)
        case RegisteredModelUpdated():
            model = catalog_pb2.RegisteredModel(name=str(event.name))
            fields_to_proto(event.values, model, event.fields)
            updated = events_pb2.RegisteredModelUpdated(registered_model=model)
            updated.update_mask.paths.extend(event.fields)
            return "registered_model_updated", updated
        case RegisteredModelArchived():
            return "registered_model_archived", events_pb2.RegisteredModelArchived(name=str(event.name))
        case RegisteredModelRestored():
            return "registered_model_restored", events_pb2.RegisteredModelRestored(name=str(event.name))
        case RegisteredModelDeleted():
            return "registered_model_deleted", events_pb2.RegisteredModelDeleted(
                name=str(event.name), reason=event.reason
            )
        case NamespaceCreated():
            return "namespace_created", events_pb2.NamespaceCreated(
                namespace=catalog_pb2.Namespace(
                    name=f"namespaces/{event.name}", description=event.description, implicit=event.implicit
                )
            )
        case _:
            assert_never(event)


def decode(envelope: Envelope) -> Event | None:
    """The domain event in an envelope; None for payloads the catalog does not fold."""
    match envelope.WhichOneof("payload"):
        case "registered_model_created":
            model = envelope.registered_model_created.registered_model
            return RegisteredModelCreated(parse_model_name(model.name), fields_from_proto(model))
        case "registered_model_updated":
            updated = envelope.registered_model_updated
            model = updated.registered_model
            return RegisteredModelUpdated(
                parse_model_name(model.name), fields_from_proto(model), tuple(updated.update_mask.paths)
            )
        case "registered_model_archived":
            return RegisteredModelArchived(parse_model_name(envelope.registered_model_archived.name))
        case "registered_model_restored":
            return RegisteredModelRestored(parse_model_name(envelope.registered_model_restored.name))
        case "registered_model_deleted":
            deleted = envelope.registered_model_deleted
            return RegisteredModelDeleted(parse_model_name(deleted.name), deleted.reason)
        case "namespace_created":
            namespace = envelope.namespace_created.namespace
            return NamespaceCreated(
                namespace.name.removeprefix("namespaces/"), namespace.description, namespace.implicit
            )
    return None

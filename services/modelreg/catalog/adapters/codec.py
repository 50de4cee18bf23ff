"""Domain events <-> the protobuf payloads that travel in envelopes.

The field conversions (properties here, signatures in modelreg.signatures_proto)
are shared with the API mapping, so the log and the API can never disagree on
what a value means.
"""

from __future__ import annotations

from datetime import UTC

from google.protobuf.message import Message

from modelreg.catalog.domain.model import (
    CatalogEvent,
    ModelFields,
    NamespaceCreated,
    Property,
    PropertyKind,
    RegisteredModelArchived,
    RegisteredModelCreated,
    RegisteredModelDeleted,
    RegisteredModelRestored,
    RegisteredModelUpdated,
)
from modelreg.gen.catalog.v1 import catalog_pb2, events_pb2
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.names import parse_model_name
from modelreg.signatures_proto import signature_from_proto, signature_to_proto


def property_to_proto(prop: Property) -> catalog_pb2.PropertyValue:
    match prop.kind:
        case PropertyKind.STRING:
            return catalog_pb2.PropertyValue(string_value=prop.value)  # type: ignore[arg-type]
        case PropertyKind.INT:
            return catalog_pb2.PropertyValue(int_value=prop.value)  # type: ignore[arg-type]
        case PropertyKind.DOUBLE:
            return catalog_pb2.PropertyValue(double_value=prop.value)  # type: ignore[arg-type]
        case PropertyKind.BOOL:
            return catalog_pb2.PropertyValue(bool_value=prop.value)  # type: ignore[arg-type]
    value = catalog_pb2.PropertyValue()
    value.timestamp_value.FromDatetime(prop.value)  # type: ignore[arg-type]
    return value


def property_from_proto(value: catalog_pb2.PropertyValue) -> Property | None:
    """None when no kind is set (the caller decides whether that is an error)."""
    match value.WhichOneof("kind"):
        case "string_value":
            return Property(PropertyKind.STRING, value.string_value)
        case "int_value":
            return Property(PropertyKind.INT, value.int_value)
        case "double_value":
            return Property(PropertyKind.DOUBLE, value.double_value)
        case "bool_value":
            return Property(PropertyKind.BOOL, value.bool_value)
        case "timestamp_value":
            return Property(PropertyKind.TIMESTAMP, value.timestamp_value.ToDatetime(tzinfo=UTC))
    return None


def fields_to_proto(values: ModelFields, message: catalog_pb2.RegisteredModel, only: tuple[str, ...]) -> None:
    if "description" in only:
        message.description = values.description
    if "annotations" in only:
        message.annotations = values.annotations
    if "tags" in only:
        message.tags.update(values.tags)
    if "properties" in only:
        for key, prop in values.properties.items():
            message.properties[key].CopyFrom(property_to_proto(prop))
    if "signature" in only and values.signature is not None:
        message.signature.CopyFrom(signature_to_proto(values.signature))
    if "owners" in only:
        message.owners.extend(values.owners)


def fields_from_proto(message: catalog_pb2.RegisteredModel) -> ModelFields:
    """Stored events were validated before they were appended, so no checks here."""
    properties = {}
    for key, value in message.properties.items():
        prop = property_from_proto(value)
        if prop is not None:
            properties[key] = prop
    return ModelFields(
        description=message.description,
        annotations=message.annotations,
        tags=dict(message.tags),
        properties=properties,
        signature=signature_from_proto(message.signature) if message.HasField("signature") else None,
        owners=tuple(message.owners),
    )


ALL = ("description", "annotations", "tags", "properties", "signature", "owners")


def encode(event: CatalogEvent) -> tuple[str, Message]:
    match event:
        case RegisteredModelCreated():
            model = catalog_pb2.RegisteredModel(name=str(event.name))
            fields_to_proto(event.values, model, ALL)
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
    raise TypeError(f"no encoding for {event!r}")


def decode(envelope: Envelope) -> CatalogEvent | None:
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

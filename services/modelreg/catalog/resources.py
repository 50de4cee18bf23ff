"""Catalog resources <-> their protobuf messages, for the API mapping and the event codec alike.

Events embed the API's RegisteredModel, so one conversion serves both and the
log and the API can never disagree on what a value means (signatures convert
in modelreg.signatures_proto).
"""

from __future__ import annotations

from datetime import UTC, datetime

from modelreg.catalog.domain.values import ModelFields, Property, PropertyKind
from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.signatures_proto import signature_from_proto, signature_to_proto


def property_to_proto(prop: Property) -> catalog_pb2.PropertyValue:
    match prop.kind, prop.value:
        case PropertyKind.BOOL, bool(value):
            return catalog_pb2.PropertyValue(bool_value=value)
        case PropertyKind.STRING, str(value):
            return catalog_pb2.PropertyValue(string_value=value)
        case PropertyKind.INT, int(value):
            return catalog_pb2.PropertyValue(int_value=value)
        case PropertyKind.DOUBLE, float(value) | int(value):
            return catalog_pb2.PropertyValue(double_value=value)
        case PropertyKind.TIMESTAMP, datetime() as value:
            message = catalog_pb2.PropertyValue()
            message.timestamp_value.FromDatetime(value)
            return message
    raise TypeError(f"a {prop.kind.value} property cannot hold {prop.value!r}")


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
    """Sets the fields named in `only` on `message`."""
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
    if "display_name" in only:
        message.display_name = values.display_name


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
        display_name=message.display_name,
    )

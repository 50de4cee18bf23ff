"""Domain events <-> the protobuf payloads that travel in envelopes."""

from __future__ import annotations

from google.protobuf.message import Message

from modelreg.catalog.domain.model import CatalogEvent, RegisteredModelCreated
from modelreg.catalog.domain.names import parse_model_name
from modelreg.gen.catalog.v1 import catalog_pb2, events_pb2
from modelreg.gen.events.v1.envelope_pb2 import Envelope


def encode(event: CatalogEvent) -> tuple[str, Message]:
    match event:
        case RegisteredModelCreated():
            return "registered_model_created", events_pb2.RegisteredModelCreated(
                registered_model=catalog_pb2.RegisteredModel(
                    name=str(event.name), description=event.description, tags=event.tags
                )
            )
    raise TypeError(f"no encoding for {event!r}")


def decode(envelope: Envelope) -> CatalogEvent | None:
    """The domain event in an envelope; None for payloads the catalog does not fold."""
    match envelope.WhichOneof("payload"):
        case "registered_model_created":
            model = envelope.registered_model_created.registered_model
            return RegisteredModelCreated(parse_model_name(model.name), model.description, dict(model.tags))
    return None

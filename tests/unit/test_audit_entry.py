"""An accepted envelope of any topic -> its audit entry, and the SDK's audit filters."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from modelreg.audit.adapters.codec import MAX_CHANGES_CHARS, entry_of
from modelreg.audit.domain.entry import resource_parts
from modelreg.audit.domain.filters import FILTER
from modelreg.client.audit import audit_filter
from modelreg.eventlog import GENESIS_HASH, EventContext, Position, build_envelope
from modelreg.eventlog.envelope import occurred_at
from modelreg.filtering import parse
from modelreg.gen.catalog.v1 import catalog_pb2, events_pb2
from modelreg.gen.promotion.v1 import events_pb2 as promotion_events
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.projections.batch import AcceptedEvent

MODEL = "namespaces/ns/models/m"


def accepted(field: str, payload: object, stream: str = MODEL, actor: str = "alice") -> AcceptedEvent:
    envelope = build_envelope(
        stream=stream,
        payload_field=field,
        payload=payload,  # type: ignore[arg-type]
        expected_revision=0,
        prev_hash=GENESIS_HASH,
        source="modelreg/test",
        context=EventContext(actor=actor, request_id="r-1", correlation_id="c-1"),
    )
    return AcceptedEvent(envelope, 1, Position("t.modelreg.catalog.v1", 2, 41), occurred_at(envelope))


def test_an_event_names_its_actor_action_resource_position_and_hashes() -> None:
    event = accepted(
        "registered_model_created",
        events_pb2.RegisteredModelCreated(
            registered_model=catalog_pb2.RegisteredModel(
                name=MODEL, description="d\x00x", tags={"b": "2", "a": "1"}
            )
        ),
    )
    entry = entry_of(event, 0)
    assert entry is not None
    assert (entry.actor, entry.action, entry.resource) == ("alice", "RegisteredModelCreated", MODEL)
    assert entry.event_type == "modelreg.catalog.v1.RegisteredModelCreated"
    assert (entry.namespace, entry.model, entry.request_id, entry.correlation_id) == (
        "ns",
        MODEL,
        "r-1",
        "c-1",
    )
    assert (entry.topic, entry.partition, entry.offset, entry.revision) == ("t.modelreg.catalog.v1", 2, 41, 1)
    assert entry.hash == event.envelope.hash and entry.prev_hash == GENESIS_HASH
    assert "\x00" not in entry.changes  # PostgreSQL text cannot hold a NUL
    changes = json.loads(entry.changes)
    assert list(changes["registered_model"]["tags"]) == [
        "a",
        "b",
    ]  # sorted keys: a replay writes the same text
    assert entry_of(event, 0) == entry


def test_a_comment_or_reason_is_found_inside_the_payload() -> None:
    entry = entry_of(
        accepted("registered_model_deleted", events_pb2.RegisteredModelDeleted(name=MODEL, reason="gdpr")), 0
    )
    assert entry is not None and entry.comment == "gdpr"


def test_a_denial_names_the_denied_principal_method_and_resource() -> None:
    denial = promotion_pb2.AccessDenial(
        principal="mallory",
        action="ApproveTransitionRequest",
        resource=f"{MODEL}/transitionRequests/x",
        reason="no",
    )
    event = accepted(
        "access_denied",
        promotion_events.AccessDenied(denial=denial),
        stream="namespaces/ns/access-denials",
        actor="svc",
    )
    entry = entry_of(event, 0)
    assert entry is not None
    assert (entry.actor, entry.action, entry.namespace, entry.model) == (
        "mallory",
        "AccessDenied",
        "ns",
        MODEL,
    )
    assert entry.comment == "ApproveTransitionRequest: no"


def test_huge_payloads_are_summarised() -> None:
    big = events_pb2.RegisteredModelCreated(
        registered_model=catalog_pb2.RegisteredModel(name=MODEL, description="x" * (MAX_CHANGES_CHARS + 1))
    )
    entry = entry_of(accepted("registered_model_created", big), 0)
    assert entry is not None and json.loads(entry.changes) == {
        "truncated": True,
        "fields": ["registered_model"],
    }


def test_resource_parts() -> None:
    assert resource_parts(f"{MODEL}/versions/3") == ("ns", MODEL)
    assert resource_parts("namespaces/ns") == ("ns", "")
    assert resource_parts("something/else") == ("", "")


def test_the_sdk_filter_quotes_values_and_parses() -> None:
    parent, text = audit_filter(
        model="ns/m", actor='a"b\\c', since=datetime(2026, 1, 1, tzinfo=UTC), until=datetime(2026, 2, 1)
    )
    assert parent == "namespaces/ns"
    assert parse(text, FILTER) is not None
    assert 'actor = "a\\"b\\\\c"' in text and 'occur_time < "2026-02-01T00:00:00Z"' in text

"""The fold rule itself, without any server: many more interleavings than the broker test."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from modelreg.eventlog import (
    ANY_REVISION,
    EMPTY_HEAD,
    GENESIS_HASH,
    EventContext,
    FoldState,
    Verdict,
    build_envelope,
    content_hash,
)
from modelreg.gen.catalog.v1 import catalog_pb2, events_pb2
from modelreg.gen.events.v1.envelope_pb2 import Envelope


def envelope(stream: str, expected: int, prev_hash: bytes, request_id: str = "", note: str = "") -> Envelope:
    payload = events_pb2.RegisteredModelCreated(
        registered_model=catalog_pb2.RegisteredModel(name=stream, description=note)
    )
    return build_envelope(
        stream=stream,
        payload_field="registered_model_created",
        payload=payload,
        expected_revision=expected,
        prev_hash=prev_hash,
        source="test",
        context=EventContext(actor="a", request_id=request_id),
    )


def test_first_event_of_a_stream_is_accepted_at_revision_one() -> None:
    state = FoldState()
    outcome = state.apply(envelope("s", 0, GENESIS_HASH))
    assert outcome is not None and outcome.verdict is Verdict.ACCEPTED and outcome.revision == 1


def test_stale_expected_revision_conflicts_and_changes_nothing() -> None:
    state = FoldState()
    first = envelope("s", 0, GENESIS_HASH)
    state.apply(first)
    racer = envelope("s", 0, GENESIS_HASH)
    outcome = state.apply(racer)
    assert outcome is not None and outcome.verdict is Verdict.CONFLICT
    assert state.head("s").revision == 1 and state.head("s").hash == first.hash


def test_redelivery_is_a_no_op() -> None:
    state = FoldState()
    e = envelope("s", 0, GENESIS_HASH)
    assert state.apply(e) is not None
    assert state.apply(e) is None
    assert state.head("s").revision == 1


def test_repeated_request_id_is_a_duplicate_of_the_accepted_event() -> None:
    state = FoldState()
    first = envelope("s", 0, GENESIS_HASH, request_id="req-1")
    state.apply(first)
    retry = envelope("s", 1, first.hash, request_id="req-1")
    outcome = state.apply(retry)
    assert outcome is not None and outcome.verdict is Verdict.DUPLICATE
    assert outcome.duplicate_of == first.event_id
    assert state.head("s").revision == 1


def test_any_revision_appends_but_must_link_to_the_head() -> None:
    state = FoldState()
    first = envelope("s", 0, GENESIS_HASH)
    state.apply(first)
    appended = state.apply(envelope("s", ANY_REVISION, first.hash))
    assert appended is not None and appended.verdict is Verdict.ACCEPTED and appended.revision == 2
    stale_link = state.apply(envelope("s", ANY_REVISION, first.hash))
    assert stale_link is not None and stale_link.verdict is Verdict.CONFLICT


def test_tampered_content_is_rejected() -> None:
    state = FoldState()
    genuine = envelope("s", 0, GENESIS_HASH)
    e = Envelope()
    e.CopyFrom(genuine)
    e.actor = "mallory"
    outcome = state.apply(e)
    assert outcome is not None and outcome.verdict is Verdict.REJECTED
    assert "hash" in outcome.reason
    # Nothing vouches for a tampered record's event id, so it does not use it up.
    assert state.head("s") == EMPTY_HEAD
    accepted = state.apply(genuine)
    assert accepted is not None and accepted.verdict is Verdict.ACCEPTED


def test_hash_covers_every_field_and_the_chain_link() -> None:
    e = envelope("s", 0, GENESIS_HASH)
    original = content_hash(e)
    for mutate in (
        lambda x: setattr(x, "stream", "t"),
        lambda x: setattr(x, "expected_revision", 5),
        lambda x: setattr(x, "prev_hash", b"\x01" * 32),
        lambda x: setattr(x.registered_model_created.registered_model, "description", "changed"),
    ):
        changed = Envelope()
        changed.CopyFrom(e)
        mutate(changed)
        assert content_hash(changed) != original


def test_hash_is_over_the_envelope_with_hash_cleared_and_leaves_it_unchanged() -> None:
    e = envelope("s", 0, GENESIS_HASH, note="n")
    sealed = e.SerializeToString(deterministic=True)
    unsealed = Envelope()
    unsealed.CopyFrom(e)
    unsealed.ClearField("hash")
    expected = hashlib.sha256(e.prev_hash + unsealed.SerializeToString(deterministic=True)).digest()
    assert content_hash(e) == expected == e.hash
    assert e.SerializeToString(deterministic=True) == sealed
    assert content_hash(unsealed) == expected and unsealed.hash == b""


# A writer's view may be stale; the property: per stream, accepted revisions
# are exactly 1..n, one winner each, and the accepted events form a hash chain.
steps = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.booleans(), st.booleans()), max_size=80)


@given(steps)
def test_one_winner_per_revision_and_an_unbroken_chain(plan: list[tuple[int, int, bool, bool]]) -> None:
    state = FoldState()
    views: dict[tuple[int, str], tuple[int, bytes]] = {}
    log: list[Envelope] = []
    for writer, stream_no, refresh, redeliver in plan:
        stream = f"s{stream_no}"
        if refresh:
            head = state.head(stream)
            views[(writer, stream)] = (head.revision, head.hash)
        if redeliver and log:
            state.apply(log[len(log) // 2])
            continue
        revision, prev_hash = views.get((writer, stream), (0, GENESIS_HASH))
        e = envelope(stream, revision, prev_hash)
        log.append(e)
        outcome = state.apply(e)
        assert outcome is not None
        if outcome.verdict is Verdict.ACCEPTED:
            views[(writer, stream)] = (outcome.revision, e.hash)

    replayed = FoldState()
    outcomes = replayed.apply_all(log)
    for stream in {e.stream for e in log}:
        accepted = [
            e
            for e, o in zip(log, outcomes, strict=True)
            if o.stream == stream and o.verdict is Verdict.ACCEPTED
        ]
        revisions = [o.revision for o in outcomes if o.stream == stream and o.verdict is Verdict.ACCEPTED]
        assert revisions == list(range(1, len(revisions) + 1))
        link = GENESIS_HASH
        for e in accepted:
            assert e.prev_hash == link
            link = e.hash
    assert replayed.heads == state.heads

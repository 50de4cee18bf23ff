"""Export bundles verified offline: an untouched bundle verifies, and every kind of tampering
is detected and named (a changed byte, a deleted, inserted or swapped line, a manifest
re-signed with another key, a truncated tail, a replaced checkpoint); a checkpoint signed
by a rotated-out key verifies with its public key, and one by an unknown key fails."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from modelreg.audit.adapters.codec import entry_of
from modelreg.audit.application.use_cases import _export_fields
from modelreg.auditlog.bundle import (
    CHECKPOINTS,
    EVENTS,
    MANIFEST,
    SIGNATURE,
    TABLE,
    BundleInvalid,
    ExportEvent,
    Partition,
    build_bundle,
    verify_bundle,
)
from modelreg.auditlog.checkpoint import GENESIS, Checkpoint, Signer
from modelreg.eventlog import EventContext, Position, build_envelope
from modelreg.eventlog.envelope import occurred_at
from modelreg.gen.catalog.v1 import catalog_pb2, events_pb2
from modelreg.merkle import MerkleTree, leaf_hash
from modelreg.projections.batch import AcceptedEvent

TOPIC = "t.modelreg.catalog.v1"
T0 = datetime(2026, 12, 1, tzinfo=UTC)

Files = dict[str, bytes]


def bundle(old: Signer, new: Signer, *, since: int = 0) -> Files:
    """Two models on one partition, 3 events each, interleaved; checkpoints at 4 (old key)
    and 6 (new key); events from the `since`-th on."""
    heads: dict[str, tuple[int, bytes]] = {}
    entries = []
    for i in range(6):
        stream = f"namespaces/ns/models/m{i % 2}"
        revision, prev = heads.get(stream, (0, GENESIS))
        payload = events_pb2.RegisteredModelUpdated(
            registered_model=catalog_pb2.RegisteredModel(name=stream, description=f"v{i}")
        )
        envelope = build_envelope(
            stream=stream,
            payload_field="registered_model_updated",
            payload=payload,
            expected_revision=revision,
            prev_hash=prev,
            source="modelreg/catalog",
            context=EventContext(actor=f"user{i % 3}", request_id=f"r{i}"),
            occurred_at=T0 + timedelta(seconds=i),
        )
        heads[stream] = (revision + 1, envelope.hash)
        entry = entry_of(
            AcceptedEvent(envelope, revision + 1, Position(TOPIC, 0, 10 + i), occurred_at(envelope)), i
        )
        assert entry is not None
        entries.append(entry)
    tree = MerkleTree([leaf_hash(e.record) for e in entries])
    first = Checkpoint(TOPIC, 0, 4, tree.root(4), GENESIS, T0, old.key_id)
    second = Checkpoint(TOPIC, 0, 6, tree.root(6), first.hash, T0 + timedelta(hours=1), new.key_id)
    partition = Partition(
        TOPIC,
        0,
        [old.sign_checkpoint(first), new.sign_checkpoint(second)],
        [leaf_hash(e.record) for e in entries],
        {"namespaces/ns/models/m0": 3, "namespaces/ns/models/m1": 3},
    )
    return build_bundle(
        [ExportEvent(_export_fields(e), e.record) for e in entries[since:]],
        [partition],
        new,
        {old.key_id: old.public_key},
        filter_={"parent": "namespaces/ns", "filter": ""},
        created=T0 + timedelta(hours=2),
    )


@pytest.fixture(scope="module")
def keys() -> tuple[Signer, Signer]:
    return Signer.generate(), Signer.generate()


def lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def test_an_untouched_bundle_verifies_with_the_current_and_rotated_out_keys(
    keys: tuple[Signer, Signer],
) -> None:
    old, new = keys
    files = bundle(old, new)
    report = verify_bundle(files, [old.public_key, new.public_key])
    assert (report.events, report.checkpoints, report.whole_streams, report.partial_streams) == (6, 2, 2, 0)
    # The checkpoint of size 4 was signed by the rotated-out key: without it, it is unknown.
    with pytest.raises(BundleInvalid, match="unknown key") as error:
        verify_bundle(files, [new.public_key])
    assert error.value.item == f"{CHECKPOINTS} line 1"
    with pytest.raises(BundleInvalid, match="not a trusted key"):
        verify_bundle(files, [Signer.generate().public_key])


def test_a_filtered_export_verifies_and_says_which_streams_are_whole(keys: tuple[Signer, Signer]) -> None:
    old, new = keys
    report = verify_bundle(bundle(old, new, since=2), [old.public_key, new.public_key])
    assert (report.events, report.whole_streams, report.partial_streams) == (4, 0, 2)
    assert "completeness holds per stream exported whole" in report.limits


def edit_events(change: Callable[[list[bytes]], list[bytes]]) -> Callable[[Files], Files]:
    return lambda files: {**files, EVENTS: b"".join(change(lines(files[EVENTS])))}


def flip_actor(files: Files) -> Files:
    rows = lines(files[EVENTS])
    rows[2] = rows[2].replace(b'"actor":"user2"', b'"actor":"user3"')
    return {**files, EVENTS: b"".join(rows)}


def flip_byte(name: str, at: int) -> Callable[[Files], Files]:
    def change(files: Files) -> Files:
        data = bytearray(files[name])
        data[at] ^= 0x01
        return {**files, name: bytes(data)}

    return change


def resign(files: Files) -> Files:
    other = Signer.generate()
    manifest = json.loads(files[MANIFEST])
    manifest["signer"] = other.key_id
    body = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    return {**files, MANIFEST: body, SIGNATURE: base64.b64encode(other.sign(body)) + b"\n"}


def replace_checkpoint(files: Files) -> Files:
    rows = lines(files[CHECKPOINTS])
    return {**files, CHECKPOINTS: rows[0] + rows[0]}


TAMPERING = {
    "a changed byte in an event": (flip_actor, f"{EVENTS} line 3", "actor"),
    "a changed byte in a record": (flip_byte(EVENTS, 700), f"{EVENTS} line 1", ""),
    "a changed byte in the CSV": (flip_byte(TABLE, 200), TABLE, "SHA-256"),
    "a changed byte in the manifest": (flip_byte(MANIFEST, 60), SIGNATURE, "does not verify"),
    "a deleted line": (edit_events(lambda r: r[:2] + r[3:]), f"{EVENTS} line 4", "hash chain"),
    "an inserted line": (edit_events(lambda r: r[:2] + [r[1]] + r[2:]), f"{EVENTS} line 3", "twice"),
    "a swapped pair": (edit_events(lambda r: [r[1], r[0], *r[2:]]), f"{EVENTS} line 2", "order"),
    "the manifest re-signed with another key": (resign, SIGNATURE, "not a trusted key"),
    "a truncated tail": (edit_events(lambda r: r[:-2]), "stream namespaces/ns/models/m0", "newest"),
    "a replaced checkpoint": (replace_checkpoint, f"{CHECKPOINTS} line 2", "previous"),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_tampering_is_detected_and_named(kind: str, keys: tuple[Signer, Signer]) -> None:
    old, new = keys
    tamper, item, words = TAMPERING[kind]
    with pytest.raises(BundleInvalid) as error:
        verify_bundle(tamper(bundle(old, new)), [old.public_key, new.public_key])
    assert error.value.item.startswith(item), str(error.value)
    assert words in error.value.problem, str(error.value)

"""The screen's fast paths (eventlog/envelope.py `has_content_hash`, `occurred_at`;
integrity.py `_is_uuid`) decide exactly as the slow checks they stand in for."""

from __future__ import annotations

import uuid
from datetime import UTC

import pytest

from modelreg.eventlog import content_hash, decode, encode
from modelreg.eventlog.envelope import UndecodableRecord, has_content_hash, occurred_at
from modelreg.eventlog.integrity import NO_INTEGRITY, LogIntegrity, _is_uuid, screen
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from tests.unit.test_envelope_signing import envelope


def sealed_variants() -> list[Envelope]:
    """Envelopes as producers seal them: unsigned, signed, without a partition, a negative
    partition, a key id too long for a one-byte length."""
    signed = LogIntegrity.generated("catalog-1")
    long_key = LogIntegrity.generated("k" * 200)
    variants = []
    for integrity, partition in ((NO_INTEGRITY, 1), (signed, 0), (signed, 2), (signed, -3), (long_key, 1)):
        e = envelope()
        integrity.seal(e, partition)
        variants.append(e)
    unsealed = envelope()
    variants.append(unsealed)
    return variants


@pytest.mark.parametrize("e", sealed_variants())
def test_the_record_hash_agrees_with_the_canonical_hash_on_valid_records(e: Envelope) -> None:
    record = encode(e)
    decoded = decode(record)
    assert content_hash(decoded) == decoded.hash
    long_key = len(decoded.signing_key_id) >= 128
    # A key id of 128 bytes or more takes the slow path (a two-byte length), and passes there.
    assert has_content_hash(decoded, record) is not long_key
    assert screen(decoded, None, NO_INTEGRITY, record) == screen(decoded, None, NO_INTEGRITY) == ""


def test_every_flipped_byte_gets_the_canonical_checks_verdict() -> None:
    integrity = LogIntegrity.generated("catalog-1")
    e = envelope()
    integrity.seal(e, 1)
    record = encode(e)
    fast_accepts = 0
    for at in range(len(record)):
        for flip in (0x01, 0x80):
            changed = bytearray(record)
            changed[at] ^= flip
            try:
                decoded = decode(bytes(changed))
            except UndecodableRecord:
                continue
            if has_content_hash(decoded, bytes(changed)):
                fast_accepts += 1
                # Only a byte the hash leaves out (the signature's, the key id's) can pass.
                assert content_hash(decoded) == decoded.hash
            for trust in (NO_INTEGRITY, integrity):
                assert screen(decoded, 1, trust, bytes(changed)) == screen(decoded, 1, trust)
    # The signature's and key id's bytes are outside the hash: those flips pass the hash.
    assert fast_accepts > 0


def test_the_hash_commits_to_the_bytes_not_only_to_the_decoded_content() -> None:
    e = envelope("before")
    NO_INTEGRITY.seal(e, 1)
    record = encode(e)
    # A byte of the payload changed: the hash check fails on both paths.
    tampered = record.replace(b"before", b"befort")
    decoded = decode(tampered)
    assert not has_content_hash(decoded, tampered)
    assert screen(decoded, 1, NO_INTEGRITY, tampered) == "hash does not match content"


def test_a_non_canonical_but_valid_encoding_takes_the_slow_path() -> None:
    e = envelope()
    NO_INTEGRITY.seal(e, 1)
    payload_only = Envelope()
    payload_only.registered_model_created.CopyFrom(e.registered_model_created)
    rest = Envelope()
    rest.CopyFrom(e)
    rest.ClearField("registered_model_created")
    # The payload first: the same envelope, in another field order than `encode` writes.
    reordered = payload_only.SerializeToString() + rest.SerializeToString()
    decoded = decode(reordered)
    assert decoded == e and reordered != encode(e)
    assert not has_content_hash(decoded, reordered)
    assert screen(decoded, 1, NO_INTEGRITY, reordered) == ""
    # The partition repeated after the payload: the same content, other bytes.
    repeated = encode(e) + b"\x78\x01"
    assert not has_content_hash(decode(repeated), repeated)
    assert screen(decode(repeated), 1, NO_INTEGRITY, repeated) == ""


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (0, 0),
        (1_764_800_000, 123_456_789),
        (1_764_800_000, 999_999_999),
        (-1, 999),
        (-62_135_596_800, 0),
        (253_402_300_799, 999_999_999),
    ],
)
def test_occurred_at_is_to_datetimes_value(seconds: int, nanos: int) -> None:
    e = Envelope()
    e.occurred_at.seconds, e.occurred_at.nanos = seconds, nanos
    fast, slow = occurred_at(e), e.occurred_at.ToDatetime(tzinfo=UTC)
    assert fast == slow and fast.tzinfo is slow.tzinfo


@pytest.mark.parametrize(("seconds", "nanos"), [(253_402_300_800, 0), (-62_135_596_801, 0), (0, -1)])
def test_occurred_at_refuses_what_to_datetime_refuses(seconds: int, nanos: int) -> None:
    e = Envelope()
    e.occurred_at.seconds, e.occurred_at.nanos = seconds, nanos
    with pytest.raises(ValueError):
        e.occurred_at.ToDatetime(tzinfo=UTC)
    with pytest.raises(ValueError):
        occurred_at(e)


def _uuid_accepts(value: str) -> bool:
    """The check before the fast path: 36 characters uuid.UUID takes."""
    if len(value) != 36:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    "value",
    [
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B",
        "urn:0190a1b2c3d47e5f8a9b0c1d2e3f4a5b",
        "{0190a1b2c3d47e5f8a9b0c1d2e3f4a5b}--",
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5\u0663",
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g",
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5",
        "0190a1b2_c3d4_7e5f_8a9b_0c1d2e3f4a5b",
        "",
    ],
)
def test_the_uuid_check_accepts_what_uuid_accepts(value: str) -> None:
    assert _is_uuid(value) is _uuid_accepts(value)

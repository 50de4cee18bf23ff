"""The screen's fast paths (eventlog/envelope.py `occurred_at`;
integrity.py `_is_uuid`) decide exactly as the slow checks they stand in for."""

from __future__ import annotations

import uuid
from datetime import UTC

import pytest

from modelreg.eventlog import content_hash, decode
from modelreg.eventlog.envelope import UndecodableRecord, occurred_at
from modelreg.eventlog.integrity import NO_INTEGRITY, _is_uuid, screen
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from tests.unit.test_envelope_signing import envelope


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


def test_a_sealed_run_spliced_into_a_field_is_rejected() -> None:
    """The record's bytes less a run of sealed fields hash right, but the run sits inside the
    stream's value (found against a hash check on the record's bytes, since removed): the
    screen hashes the decoded content, so what the decoder reads is what is checked."""
    e = envelope()
    NO_INTEGRITY.seal(e, 1)
    unsealed = Envelope()
    unsealed.CopyFrom(e)
    for name in ("hash", "signature", "signing_key_id", "partition"):
        unsealed.ClearField(name)
    canonical = unsealed.SerializeToString(deterministic=True)
    inside_stream = canonical.index(e.stream.encode()) + 3
    spliced = canonical[:inside_stream] + b"\x62\x20" + e.hash + canonical[inside_stream:]
    assert content_hash(e) == e.hash
    try:
        decoded = decode(spliced)
    except UndecodableRecord:
        return
    assert screen(decoded, 1, NO_INTEGRITY) != ""

"""Timestamps in requests -> validated datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from modelreg.errors import InvalidArgument

# RFC 3339's range, which Timestamp documents: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def as_of(value: Timestamp, field: str) -> datetime:
    """A point in time a read is asked about, in UTC."""
    if not _MIN_SECONDS <= value.seconds <= _MAX_SECONDS or not 0 <= value.nanos < 1_000_000_000:
        raise InvalidArgument.of(field, "is not a timestamp between years 1 and 9999")
    return value.ToDatetime(tzinfo=UTC)

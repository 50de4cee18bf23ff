"""The log archive: every modelreg topic, partition by partition, in append-only segments.

Layout in a segment store (filesystem or S3, see `open_segment_store`):

    manifest.json                                   the index (replaced atomically)
    segments/<topic>/<partition>/<base:020d>.seg    immutable once listed in the index

A segment holds consecutive records of one partition (offset, timestamp, key,
value, headers) in a small binary framing; the index lists every segment with its
first and last offset, record count, size and SHA-256, plus each topic's partition
count. A segment reaches the index only after it is durably written, so the index
never names bytes that are not there; a segment written but not yet indexed (a crash
in between) is simply written again on resume.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

MANIFEST = "manifest.json"
SEGMENT_MAGIC = b"MRSEG1\n"
FORMAT_VERSION = 1

_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")


class SegmentStore(Protocol):
    """Where an archive lives. Contract tests: tests/integration/test_archive_store.py."""

    async def write(self, name: str, data: bytes) -> None:
        """Stores `data` under `name`, durably (fsynced / acknowledged) and atomically:
        a reader sees the old object or the whole new one, never a part."""
        ...

    async def read(self, name: str) -> bytes:
        """The bytes under `name`; FileNotFoundError if there are none."""
        ...

    async def exists(self, name: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class ArchivedRecord:
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    name: str
    base_offset: int
    last_offset: int
    records: int
    bytes: int
    sha256: str


@dataclass(slots=True)
class TopicIndex:
    partitions: int
    segments: dict[int, list[SegmentInfo]] = field(default_factory=dict)

    def next_offset(self, partition: int) -> int:
        """Where archiving this partition continues: one past its last archived record."""
        segments = self.segments.get(partition)
        return segments[-1].last_offset + 1 if segments else 0

    def records(self, partition: int) -> int:
        return sum(s.records for s in self.segments.get(partition, []))


@dataclass(slots=True)
class Manifest:
    topics: dict[str, TopicIndex] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT_VERSION,
            "topics": {
                topic: {
                    "partitions": index.partitions,
                    "segments": {
                        str(p): [asdict(s) for s in segments]
                        for p, segments in sorted(index.segments.items())
                    },
                }
                for topic, index in sorted(self.topics.items())
            },
        }
        return json.dumps(body, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        body = json.loads(data)
        if body.get("format") != FORMAT_VERSION:
            raise CorruptArchive(f"{MANIFEST}: unknown format {body.get('format')!r}")
        return cls(
            {
                topic: TopicIndex(
                    entry["partitions"],
                    {
                        int(p): [SegmentInfo(**s) for s in segments]
                        for p, segments in entry["segments"].items()
                    },
                )
                for topic, entry in body["topics"].items()
            }
        )


class CorruptArchive(ValueError):
    """An archive whose bytes do not match its index, or whose index is inconsistent."""


async def load_manifest(store: SegmentStore) -> Manifest:
    """The archive's index; an empty one for a store that holds no archive yet."""
    if not await store.exists(MANIFEST):
        return Manifest()
    return Manifest.from_json(await store.read(MANIFEST))


def segment_name(topic: str, partition: int, base_offset: int) -> str:
    return f"segments/{topic}/{partition}/{base_offset:020d}.seg"


def _bytes_field(value: bytes | None) -> bytes:
    return _INT32.pack(-1) if value is None else _INT32.pack(len(value)) + value


def encode_segment(records: Sequence[ArchivedRecord]) -> bytes:
    parts = [SEGMENT_MAGIC, _INT32.pack(len(records))]
    for record in records:
        parts += [
            _INT64.pack(record.offset),
            _INT64.pack(record.timestamp_ms),
            _bytes_field(record.key),
            _bytes_field(record.value),
            _INT32.pack(len(record.headers)),
        ]
        for name, value in record.headers:
            parts += [_bytes_field(name.encode()), _bytes_field(value)]
    return b"".join(parts)


def decode_segment(data: bytes, name: str = "segment") -> list[ArchivedRecord]:
    """The records of a segment; CorruptArchive if its framing is broken."""
    view = memoryview(data)
    position = 0

    def take(n: int) -> bytes:
        nonlocal position
        if n < 0 or position + n > len(view):
            raise CorruptArchive(f"{name}: truncated at byte {position}")
        chunk = bytes(view[position : position + n])
        position += n
        return chunk

    def int64() -> int:
        value: int = _INT64.unpack(take(8))[0]
        return value

    def int32() -> int:
        value: int = _INT32.unpack(take(4))[0]
        return value

    def optional_bytes() -> bytes | None:
        length = int32()
        return None if length == -1 else take(length)

    if take(len(SEGMENT_MAGIC)) != SEGMENT_MAGIC:
        raise CorruptArchive(f"{name}: not a segment (bad magic)")
    records = []
    for _ in range(int32()):
        offset, timestamp = int64(), int64()
        key, value = optional_bytes(), optional_bytes()
        headers = []
        for _ in range(int32()):
            header_name = optional_bytes() or b""
            headers.append((header_name.decode(), optional_bytes() or b""))
        records.append(ArchivedRecord(offset, timestamp, key, value, tuple(headers)))
    if position != len(view):
        raise CorruptArchive(f"{name}: {len(view) - position} trailing bytes")
    return records


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def read_segment(store: SegmentStore, info: SegmentInfo) -> list[ArchivedRecord]:
    """A segment's records, after checking its size and checksum against the index."""
    try:
        data = await store.read(info.name)
    except FileNotFoundError:
        raise CorruptArchive(f"{info.name}: listed in the index but missing") from None
    if len(data) != info.bytes or sha256_hex(data) != info.sha256:
        raise CorruptArchive(f"{info.name}: checksum mismatch (the segment was changed or damaged)")
    records = decode_segment(data, info.name)
    if (
        len(records) != info.records
        or not records
        or records[0].offset != info.base_offset
        or records[-1].offset != info.last_offset
    ):
        raise CorruptArchive(f"{info.name}: contents do not match the index entry")
    return records


def offset_gaps(records: Sequence[ArchivedRecord], expected_first: int) -> Iterator[tuple[int, int]]:
    """(expected, found) wherever the offsets are not consecutive."""
    expected = expected_first
    for record in records:
        if record.offset != expected:
            yield expected, record.offset
        expected = record.offset + 1

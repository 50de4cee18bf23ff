"""The SegmentStore contract, written once and run against both adapters: the filesystem
and S3 (moto's server through the minio client)."""

from __future__ import annotations

import pytest

from modelreg.archive import (
    ArchivedRecord,
    CorruptArchive,
    SegmentInfo,
    SegmentStore,
    encode_segment,
    read_segment,
    sha256_hex,
)


async def test_a_write_reads_back_and_replaces_atomically(segment_store: SegmentStore) -> None:
    assert not await segment_store.exists("manifest.json")
    await segment_store.write("manifest.json", b"one")
    assert await segment_store.exists("manifest.json")
    assert await segment_store.read("manifest.json") == b"one"
    await segment_store.write("manifest.json", b"two")
    assert await segment_store.read("manifest.json") == b"two"


async def test_a_missing_name_is_file_not_found(segment_store: SegmentStore) -> None:
    with pytest.raises(FileNotFoundError):
        await segment_store.read("segments/t/0/00000000000000000000.seg")


async def test_segments_round_trip_and_damage_is_caught(segment_store: SegmentStore) -> None:
    records = [
        ArchivedRecord(0, 1_700_000_000_000, b"k", b"v" * 100, (("ce_type", b"x"), ("empty", b""))),
        ArchivedRecord(1, 1_700_000_000_001, None, None, ()),
    ]
    data = encode_segment(records)
    info = SegmentInfo("segments/t/0/00000000000000000000.seg", 0, 1, 2, len(data), sha256_hex(data))
    await segment_store.write(info.name, data)
    assert await read_segment(segment_store, info) == records
    await segment_store.write(info.name, data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CorruptArchive, match="checksum"):
        await read_segment(segment_store, info)

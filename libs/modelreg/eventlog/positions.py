"""Log positions and consistency tokens.

A token is the (topic, partition) -> offset vector a write produced; a reader
that presents it waits until its service has projected at least that far
(Zanzibar's zookies). The encoding is opaque to clients: url-safe base64 of a
compact JSON object, so tokens can be merged by the SDK without our protos.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TOKEN_METADATA_KEY = "modelreg-consistency-token"


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a record landed: its topic, partition and offset."""

    topic: str
    partition: int
    offset: int


class InvalidToken(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ConsistencyToken:
    """For each (topic, partition), the offset that must have been projected (exclusive)."""

    required: Mapping[tuple[str, int], int]

    @classmethod
    def after(cls, positions: Iterable[Position]) -> ConsistencyToken:
        required: dict[tuple[str, int], int] = {}
        for p in positions:
            key = (p.topic, p.partition)
            required[key] = max(required.get(key, 0), p.offset + 1)
        return cls(required)

    def merge(self, other: ConsistencyToken) -> ConsistencyToken:
        merged = dict(self.required)
        for key, offset in other.required.items():
            merged[key] = max(merged.get(key, 0), offset)
        return ConsistencyToken(merged)

    def encode(self) -> str:
        by_topic: dict[str, dict[str, int]] = {}
        for (topic, partition), offset in sorted(self.required.items()):
            by_topic.setdefault(topic, {})[str(partition)] = offset
        raw = json.dumps(by_topic, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> ConsistencyToken:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            by_topic = json.loads(raw)
            required = {
                (str(topic), int(partition)): int(offset)
                for topic, partitions in by_topic.items()
                for partition, offset in partitions.items()
            }
        except (binascii.Error, ValueError, AttributeError, TypeError) as exc:
            raise InvalidToken("consistency token is malformed") from exc
        if any(p < 0 or o < 0 for (_, p), o in required.items()):
            raise InvalidToken("consistency token is malformed")
        return cls(required)

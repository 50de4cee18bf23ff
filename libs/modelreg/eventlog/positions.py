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
from typing import NamedTuple

from modelreg.limits import INT64_MAX, MAX_TOKEN_BYTES, loads_token_json

TOKEN_METADATA_KEY = "modelreg-consistency-token"
_MAX_TOKEN_TOPICS = 64
_MAX_TOKEN_PARTITIONS = 1024


class Position(NamedTuple):
    """Where a record landed: its topic, partition and offset.

    A named tuple (ordered and immutable as a frozen dataclass would be): a projector makes
    one per record, and a frozen dataclass's __init__ cost a replay 0.4 us a record more."""

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
        """Parsed defensively (the token comes from the client): bounded size and depth,
        topics as text, partitions as ASCII digits, offsets as 64-bit integers >= 0."""
        if len(token) > MAX_TOKEN_BYTES * 2:
            raise InvalidToken("consistency token is too large")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            by_topic = loads_token_json(raw)
        except (binascii.Error, ValueError) as exc:
            raise InvalidToken("consistency token is malformed") from exc
        if not isinstance(by_topic, dict) or len(by_topic) > _MAX_TOKEN_TOPICS:
            raise InvalidToken("consistency token is malformed")
        required: dict[tuple[str, int], int] = {}
        for topic, partitions in by_topic.items():
            if not topic or len(topic) > 249 or not isinstance(partitions, dict):
                raise InvalidToken("consistency token is malformed")
            if len(partitions) > _MAX_TOKEN_PARTITIONS:
                raise InvalidToken("consistency token is malformed")
            for partition, offset in partitions.items():
                if not (partition.isascii() and partition.isdigit() and len(partition) <= 9):
                    raise InvalidToken("consistency token is malformed")
                if type(offset) is not int or not 0 <= offset <= INT64_MAX:
                    raise InvalidToken("consistency token is malformed")
                required[(topic, int(partition))] = offset
        return cls(required)

"""What a model's stages and aliases pointed to at a past moment, and why: the move that set
each one (who requested and who approved it) and what that version was trained on.

Answered from history: the promotion service rebuilds the pointers of the moment from
its applied transitions (GetPointers.as_of), the pointer history names each move, the
versioning service keeps every state of every version (GetModelVersion.as_of: its status,
manifest, description and tags then), and a lineage record is superseded, never deleted,
so the records in effect then are those recorded by the moment and not yet superseded by
a correction recorded by then (GetLineageSubgraph.as_of walks that graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from modelreg.client.lineage import LineageClient
from modelreg.client.promotion import PromotionClient
from modelreg.client.uris import parse_uri
from modelreg.client.versioning import VersioningClient
from modelreg.gen.lineage.v1 import lineage_pb2
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.gen.versioning.v1 import versioning_pb2


@dataclass(frozen=True)
class PointerAsOf:
    pointer: str
    """A stage (STAGING, PRODUCTION) or an alias."""
    version: int
    move: promotion_pb2.PointerHistoryEntry | None
    """The applied transition that last set it: requester, approvals, comment, time."""
    model_version: versioning_pb2.ModelVersion
    lineage: list[lineage_pb2.LineageRecord]
    """What the version was trained on: the records in effect at the moment (recorded by
    then and not yet superseded by a correction recorded by then), in recording order."""


@dataclass(frozen=True)
class ModelAsOf:
    model: str
    time: datetime
    pointers: promotion_pb2.Pointers
    entries: list[PointerAsOf]


def in_effect(records: list[lineage_pb2.LineageRecord]) -> list[lineage_pb2.LineageRecord]:
    """Of the records recorded by a moment, those no correction recorded by then superseded."""
    names = {r.name for r in records}
    return [r for r in records if r.superseded_by not in names]


def rfc3339(time: datetime) -> str:
    return time.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def model_as_of(
    promotion: PromotionClient,
    versioning: VersioningClient,
    lineage: LineageClient,
    uri: str,
    time: datetime,
) -> ModelAsOf:
    if time.tzinfo is None:
        raise ValueError("the moment needs a time zone")
    model = parse_uri(uri).model_name
    at = rfc3339(time)
    pointers = await promotion.pointers(uri, as_of=time)
    entries = []
    named = [*sorted(pointers.stages.items()), *sorted(pointers.aliases.items())]
    for pointer, version in named:
        moves = await promotion.history(uri, pointer=pointer, filter=f'apply_time <= "{at}"')
        records = await lineage.list_lineage_records(
            f"{uri}/{version}", show_superseded=True, filter=f'create_time <= "{at}"'
        )
        entries.append(
            PointerAsOf(
                pointer=pointer,
                version=version,
                move=moves[0] if moves else None,
                model_version=await versioning.get_version(f"{uri}/{version}", as_of=time),
                lineage=in_effect(records),
            )
        )
    return ModelAsOf(model, time, pointers, entries)

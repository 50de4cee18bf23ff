"""What the lineage use cases need from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from modelreg import filtering
from modelreg.commands.contracts import Commands
from modelreg.lineage.domain.evaluations import (
    EvaluationRecorded,
    StoredEvaluation,
    Threshold,
    ThresholdsSet,
    VersionHealth,
)
from modelreg.lineage.domain.events import Event
from modelreg.lineage.domain.queries import Direction, StoredRecord, Subgraph
from modelreg.lineage.domain.state import RecordState
from modelreg.lineage.domain.values import Node
from modelreg.paging import Keyset


class LineageReader(Protocol):
    async def get_record(self, record_id: str) -> StoredRecord | None: ...

    async def list_records(
        self,
        version: str,
        *,
        show_superseded: bool,
        after: Keyset | None = None,
        limit: int | None = None,
        where: filtering.Node | None = None,
    ) -> Sequence[tuple[int, StoredRecord]]:
        """(log offset, record): the version's records in log order after the keyset `after` (offset,),
        at most `limit`, that match `where`; superseded ones only when asked. A version's records share
        one partition."""

    async def nodes(self, ids: Sequence[str]) -> Sequence[Node]:
        """The nodes among `ids` that exist, in any order."""

    async def record_names(self, record_ids: Sequence[str]) -> dict[str, str]:
        """id of a lineage record or an evaluation -> its resource name."""

    async def walk(
        self,
        start: Sequence[str],
        direction: Direction,
        max_hops: int,
        hops_field: str = "query.max_hops",
        as_of: datetime | None = None,
    ) -> Subgraph:
        """Nodes within max_hops of the existing start nodes over current edges, and the edges followed;
        InvalidArgument on `hops_field` when the walk grows past the service's bound. With `as_of`,
        the graph of that moment: start nodes stated by then, over the edges of the records recorded
        by then and not superseded by a correction recorded by then."""


class VersionDirectory(Protocol):
    """Which model versions exist: the versioning reference cache."""

    async def states(self, names: Sequence[str]) -> dict[str, bool]:
        """name -> deleted, for the names known to exist (or to have existed)."""


class StageDirectory(Protocol):
    """Which versions a promotion stage points at; the hook for FindDownstream's stage filter."""

    async def versions_in(self, stages: Sequence[str]) -> set[str]:
        """Version names some stage in `stages` points at; FailedPrecondition if unknown here."""


LineageCommands = Commands[RecordState | None, Event]
"""On a model's stream: records are appended; a supersede decides on the record its `part` names."""


class EvaluationReader(Protocol):
    async def thresholds(self, model: str) -> tuple[Threshold, ...]: ...

    async def evaluation(self, evaluation_id: str) -> StoredEvaluation | None: ...

    async def evaluations(
        self,
        model: str,
        version: str | None,
        where: filtering.Node | None,
        descending: bool,
        after: Keyset | None,
        limit: int,
    ) -> list[StoredEvaluation]:
        """The model's (or one version's) evaluations matching `where`, by (evaluate_time, id), after
        the keyset `after` (evaluate_time, id)."""

    async def newest_on(self, version: str, dataset_uri: str, dataset_digest: str) -> StoredEvaluation | None:
        """The version's newest evaluation on the dataset (any digest when `dataset_digest` is empty)."""


EvaluationCommands = Commands[VersionHealth, EvaluationRecorded | ThresholdsSet]
"""On a model's stream: an evaluation decides on the health of the version its `part` names."""

"""The lineage use cases: validate, check the version exists, decide through the log, query."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from modelreg.access import may_read, namespace_in
from modelreg.errors import InvalidArgument, NotFound
from modelreg.eventlog import ConsistencyToken, EventContext
from modelreg.lineage.application.ports import (
    LineageCommands,
    LineageReader,
    StageDirectory,
    VersionDirectory,
)
from modelreg.lineage.domain import filters
from modelreg.lineage.domain.commands import RecordLineage, SupersedeRecord
from modelreg.lineage.domain.decide import decide
from modelreg.lineage.domain.names import parse_record_name
from modelreg.lineage.domain.queries import (
    MAX_DOWNSTREAM_HOPS,
    Direction,
    Reproduction,
    StoredRecord,
    Subgraph,
    SubgraphQuery,
    TypeDiff,
    check_subgraph_query,
    diff,
    readable_part,
    reproduction,
    select,
)
from modelreg.lineage.domain.values import (
    Edge,
    LineageRecord,
    Node,
    NodeType,
    check_record,
    node_type_of,
    version_node_id,
)
from modelreg.names import parse_version_name
from modelreg.paging import MAX_PAGE_SIZE, Page, page_request

DEFAULT_PAGE_SIZE = 500
MAX_STAGES = 16
STAGE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Written:
    record: StoredRecord
    token: ConsistencyToken


@dataclass(frozen=True, slots=True)
class SubgraphPage:
    nodes: Sequence[Node]
    edges: dict[tuple[str, str, str], str]
    """(source, target, relation) -> record resource name."""
    next_page_token: str


@dataclass(frozen=True, slots=True)
class Affected:
    model_version: str
    distance: int


@dataclass(frozen=True, slots=True)
class FullSubgraph:
    nodes: Sequence[Node]
    edges: dict[tuple[str, str, str], str]


class Lineage:
    def __init__(
        self,
        reader: LineageReader,
        commands: LineageCommands,
        versions: VersionDirectory,
        stages: StageDirectory,
    ) -> None:
        self._reader = reader
        self._commands = commands
        self._versions = versions
        self._stages = stages

    # -- writes ---------------------------------------------------------------

    async def record(self, parent: str, record: LineageRecord, context: EventContext) -> Written:
        version = parse_version_name(parent, "parent")
        # Decided before asking the cache, so bad input is INVALID_ARGUMENT first; recording
        # reads no state (it is appended at ANY revision).
        event = decide(None, RecordLineage(record))
        await self._require_versions_unless_done(version.model_name, record, context)
        result = await self._commands.append(version.model_name, context, event)
        return Written(await self._read_back(result.event_id), result.token)

    async def supersede(
        self, name: str, record: LineageRecord, reason: str, context: EventContext
    ) -> Written:
        version, record_id = parse_record_name(name)
        command = SupersedeRecord(record_id, str(version), record, reason)
        check_record(record)  # bad input is INVALID_ARGUMENT before any lookup
        await self._require_versions_unless_done(version.model_name, record, context)
        result = await self._commands.run(
            version.model_name, context, lambda state: decide(state, command), part=record_id
        )
        return Written(await self._read_back(result.event_id), result.token)

    async def _require_versions_unless_done(
        self, stream: str, record: LineageRecord, context: EventContext
    ) -> None:
        """A retry of a write that was carried out skips the check: the command path then answers
        with the original, even when a version was deleted since."""
        try:
            await self._require_versions(record)
        except NotFound:
            if await self._commands.original(stream, context) is None:
                raise

    async def _require_versions(self, record: LineageRecord) -> None:
        # Validation only, against the versioning reference cache: the version must
        # exist and not be deleted; a parent must have existed (a deleted parent
        # still is what the child was derived from).
        parents = [p.model_version for p in record.parents]
        known = await self._versions.states([record.model_version, *parents])
        if known.get(record.model_version, True):
            raise NotFound(
                f"{record.model_version} does not exist (or is deleted) in the versioning service; "
                "if it was just created, pass its consistency token"
            )
        for i, parent in enumerate(parents):
            if parent not in known:
                raise NotFound(f"record.parents[{i}].model_version: {parent} does not exist")

    async def _read_back(self, record_id: str) -> StoredRecord:
        stored = await self._reader.get_record(record_id)
        if stored is None:
            raise NotFound(
                f"lineage record {record_id} is not in the read model after its write was accepted"
            )
        return stored

    # -- records ----------------------------------------------------------------

    async def get_record(self, name: str) -> StoredRecord:
        version, record_id = parse_record_name(name)
        stored = await self._reader.get_record(record_id)
        if stored is None or stored.record.model_version != str(version):
            raise NotFound(f"{name} does not exist")
        return stored

    async def list_records(
        self,
        parent: str,
        show_superseded: bool,
        page_size: int = 0,
        page_token: str = "",
        filter_text: str = "",
    ) -> Page[StoredRecord]:
        version = parse_version_name(parent, "parent")
        where = filters.parse_filter(filter_text)
        paging = page_request(
            page_size,
            page_token,
            [int],
            default_size=MAX_PAGE_SIZE,
            parent=str(version),
            show_superseded=show_superseded,
            filter=filter_text,
        )
        rows = await self._reader.list_records(
            str(version), show_superseded=show_superseded, after=paging.after, limit=paging.fetch, where=where
        )
        page = paging.page(rows, lambda row: (row[0],))
        return Page([record for _, record in page.items], page.next_page_token)

    async def _current(self, version: str, field: str) -> Sequence[StoredRecord]:
        parse_version_name(version, field)
        records = [record for _, record in await self._reader.list_records(version, show_superseded=False)]
        if not records:
            raise NotFound(f"{version} has no lineage recorded")
        return records

    async def diff(self, a: str, b: str) -> list[TypeDiff]:
        records_a = await self._current(a, "model_version_a")
        records_b = await self._current(b, "model_version_b")
        return diff([r.record for r in records_a], [r.record for r in records_b])

    async def reproduction(self, version: str) -> Reproduction:
        records = await self._current(version, "model_version")
        return reproduction(version, [(r.id, r.record) for r in records])

    # -- graph ------------------------------------------------------------------

    async def _walk(self, query: SubgraphQuery, as_of: datetime | None = None) -> Subgraph:
        check_subgraph_query(query)
        graph = await self._reader.walk(query.start_nodes, query.direction, query.max_hops, as_of=as_of)
        # Only what the caller may read (RBAC): versions of other namespaces, and what the walk
        # reached only through them, are left out.
        graph = readable_part(graph, query.start_nodes, lambda node: not may_read(namespace_in(node) or ""))
        return select(graph, query.node_types)

    async def _edge_records(self, graph: Subgraph, edges: set[Edge]) -> dict[tuple[str, str, str], str]:
        wanted = [item for item in graph.edges.items() if item[0] in edges]
        names = await self._reader.record_names(sorted({r for _, r in wanted}))
        return {
            (e.source, e.target, e.relation): names.get(r, r)
            for e, r in sorted(wanted, key=lambda item: item[0])
        }

    async def subgraph(
        self, query: SubgraphQuery, page_size: int, page_token: str, as_of: datetime | None = None
    ) -> SubgraphPage:
        """The graph now, or as it stood at `as_of` (page tokens hold to the same moment)."""
        moment = {} if as_of is None else {"as_of": as_of.isoformat()}
        paging = page_request(
            page_size, page_token, [str], default_size=DEFAULT_PAGE_SIZE, query=query.normalized(), **moment
        )
        after = str(paging.after[0]) if paging.after else ""
        graph = await self._walk(query, as_of)
        # The walk is in memory, so the keyset is applied here: node ids after the last one served.
        page = paging.page(sorted(i for i in graph.nodes if i > after)[: paging.fetch], lambda i: (i,))
        on_page = set(page.items)
        edges = {e for e in graph.edges if e.source in on_page}
        nodes = sorted(await self._reader.nodes(page.items), key=lambda n: n.id)
        return SubgraphPage(nodes, await self._edge_records(graph, edges), page.next_page_token)

    async def export(self, query: SubgraphQuery) -> FullSubgraph:
        graph = await self._walk(query)
        nodes = sorted(await self._reader.nodes(sorted(graph.nodes)), key=lambda n: n.id)
        return FullSubgraph(nodes, await self._edge_records(graph, set(graph.edges)))

    async def downstream(self, node: str, stages: Sequence[str], max_hops: int) -> list[Affected]:
        """Every version reachable downstream of `node` (transitively: a version
        fine-tuned from an affected one is affected too), nearest distance first seen."""
        if node_type_of(node) is None:
            raise InvalidArgument.of("target", f"{node[:100]!r} is not a node id")
        if not 0 <= max_hops <= MAX_DOWNSTREAM_HOPS:
            raise InvalidArgument.of("max_hops", f"must be between 0 and {MAX_DOWNSTREAM_HOPS}")
        if len(stages) > MAX_STAGES:
            raise InvalidArgument.of("stages", f"at most {MAX_STAGES}")
        for i, stage in enumerate(stages):
            if not STAGE_PATTERN.fullmatch(stage):
                raise InvalidArgument.of(f"stages[{i}]", f"{stage[:70]!r} must match {STAGE_PATTERN.pattern}")
        graph = await self._reader.walk(
            [node], Direction.DOWNSTREAM, max_hops or MAX_DOWNSTREAM_HOPS, hops_field="max_hops"
        )
        prefix = version_node_id("")
        affected = [
            Affected(n[len(prefix) :], d)
            for n, d in graph.nodes.items()
            if node_type_of(n) is NodeType.MODEL_VERSION and n != node
        ]
        # Only the versions the caller may read (RBAC).
        affected = [a for a in affected if may_read(namespace_in(a.model_version) or "")]
        if stages:
            staged = await self._stages.versions_in(stages)
            affected = [a for a in affected if a.model_version in staged]
        return sorted(affected, key=lambda a: a.model_version)

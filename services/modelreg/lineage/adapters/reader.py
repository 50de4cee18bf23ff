"""Reads of the lineage read model and the reference caches: records, nodes, the graph walk, and the
VersionDirectory and StageDirectory ports.

The walk is a batched breadth-first search: one indexed statement per hop for
the whole frontier. A recursive CTE would have to carry a visited set to stay
bounded on a graph with shared nodes (UNION dedups on (node, depth), not
node), and the frontier query is just as few round trips for the hop limits
allowed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from modelreg import filtering
from modelreg.commands.contracts import Loaded
from modelreg.errors import InvalidArgument
from modelreg.eventlog import EMPTY_HEAD, head_of
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from modelreg.lineage.adapters import filter_columns
from modelreg.lineage.domain import filters
from modelreg.lineage.domain.queries import Direction, StoredRecord, Subgraph
from modelreg.lineage.domain.state import RecordState
from modelreg.lineage.domain.values import Edge, Node, NodeType, version_node_id
from modelreg.lineage.resources import record_from_proto
from modelreg.paging import Keyset
from modelreg.projections.schema import quote_schema

MAX_SUBGRAPH_NODES = 50_000
"""A walk that reaches more nodes than this is refused: lower max_hops."""

RECORD_COLUMNS = (
    'id::text, version, "offset", body, create_time, creator, supersedes::text, superseded_by::text, reason'
)


def _stored(row: asyncpg.Record) -> StoredRecord:
    message = pb.LineageRecord()
    message.ParseFromString(row["body"])
    return StoredRecord(
        id=row["id"],
        record=record_from_proto(message, row["version"]),
        create_time=row["create_time"],
        creator=row["creator"],
        supersedes=row["supersedes"],
        superseded_by=row["superseded_by"],
        reason=row["reason"],
    )


def _node(row: asyncpg.Record) -> Node:
    attributes = json.loads(row["attributes"])
    return Node(row["id"], NodeType(row["type"]), tuple(sorted(attributes.items())))


class PostgresLineageReader:
    def __init__(self, pool: asyncpg.Pool, schema: str, max_nodes: int = MAX_SUBGRAPH_NODES) -> None:
        self._pool = pool
        self._max_nodes = max_nodes
        s = quote_schema(schema)
        self._head_sql = f"SELECT revision, hash FROM {s}.stream_heads WHERE stream = $1"
        self._load_record_sql = (
            f"SELECT h.revision AS head_revision, h.hash AS head_hash,"
            f" r.id::text AS id, r.version, r.superseded_by::text AS superseded_by"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
            f" LEFT JOIN {s}.lineage_records r ON r.id = $2::uuid AND r.model = wanted.stream"
        )
        self._record_sql = f"SELECT {RECORD_COLUMNS} FROM {s}.lineage_records WHERE id = $1::uuid"
        self._list_sql = (
            f"SELECT {RECORD_COLUMNS} FROM {s}.lineage_records"
            f' WHERE version = $1 AND (superseded_by IS NULL OR $2) AND "offset" > $3'
            ' ORDER BY "offset" LIMIT $4'
        )
        select = "SELECT DISTINCT ON (source, target, relation) source, target, relation, record_id::text"
        order = " ORDER BY source, target, relation, record_id"
        edges = f"{select} FROM {s}.lineage_edges WHERE current"
        self._edges_sql = {
            Direction.DOWNSTREAM: f"{edges} AND source = ANY($1){order}",
            Direction.UPSTREAM: f"{edges} AND target = ANY($1){order}",
            Direction.BIDIRECTIONAL: (
                f"{select} FROM {s}.lineage_edges"
                f" WHERE current AND (source = ANY($1) OR target = ANY($1)){order}"
            ),
        }

        # As of a moment T: the edges of records recorded by T that no correction recorded by T
        # superseded, current or not now (each half served by its partial index), and the edges of
        # evaluations recorded by T (append-only: never superseded).
        def in_effect(condition: str) -> str:
            return (
                "SELECT DISTINCT ON (e.source, e.target, e.relation) e.source, e.target, e.relation,"
                " e.record_id::text FROM ("
                f"  SELECT * FROM {s}.lineage_edges WHERE current AND {condition}"
                f"  UNION ALL SELECT * FROM {s}.lineage_edges WHERE NOT current AND {condition}"
                f" ) AS e LEFT JOIN {s}.lineage_records r ON r.id = e.record_id"
                f" LEFT JOIN {s}.lineage_records n ON n.id = r.superseded_by"
                f" LEFT JOIN {s}.evaluations v ON v.id = e.record_id"
                " WHERE (r.create_time <= $2 AND (n.id IS NULL OR n.create_time > $2))"
                " OR v.create_time <= $2"
                " ORDER BY e.source, e.target, e.relation, e.record_id"
            )

        self._edges_as_of_sql = {
            Direction.DOWNSTREAM: in_effect("source = ANY($1)"),
            Direction.UPSTREAM: in_effect("target = ANY($1)"),
            Direction.BIDIRECTIONAL: in_effect("(source = ANY($1) OR target = ANY($1))"),
        }

        # A node existed at T when a record or an evaluation recorded by T stated it: as the version
        # it describes, or at either end of one of its edges.
        def stated(end: str, current: str, by: str = "lineage_records") -> str:
            return (
                f" OR EXISTS (SELECT 1 FROM {s}.lineage_edges e JOIN {s}.{by} r"
                f"  ON r.id = e.record_id WHERE {current} e.current AND e.{end} = n.id"
                "  AND r.create_time <= $2)"
            )

        def describes(by: str) -> str:
            return (
                f" EXISTS (SELECT 1 FROM {s}.{by} r WHERE starts_with(n.id, $3)"
                "  AND r.version = substr(n.id, length($3) + 1) AND r.create_time <= $2)"
            )

        self._start_as_of_sql = (
            f"SELECT n.id FROM {s}.lineage_nodes n WHERE n.id = ANY($1::text[]) AND ("
            + describes("lineage_records")
            + " OR"
            + describes("evaluations")
            + "".join(stated(end, c) for end in ("source", "target") for c in ("", "NOT"))
            + "".join(stated(end, "", "evaluations") for end in ("source", "target"))
            + ")"
        )
        self._nodes_sql = (
            f"SELECT id, type, attributes::text FROM {s}.lineage_nodes WHERE id = ANY($1::text[])"
        )
        # An edge is stated by a lineage record or by an evaluation (an evaluation's edges are keyed by
        # its id): the resource name of whichever stated it.
        self._record_versions_sql = (
            f"SELECT id::text, version || '/lineageRecords/' || id::text AS name FROM {s}.lineage_records"
            " WHERE id = ANY($1::uuid[])"
            f" UNION ALL SELECT id::text, version || '/evaluations/' || id::text FROM {s}.evaluations"
            " WHERE id = ANY($1::uuid[])"
        )

    async def load_head(self, stream: str) -> Loaded[None]:
        row = await self._pool.fetchrow(self._head_sql, stream)
        return Loaded(None, head_of(row["revision"], row["hash"]) if row else EMPTY_HEAD)

    async def load_record(self, stream: str, record_id: str) -> Loaded[RecordState | None]:
        # One statement: the record's state and the stream head from one snapshot,
        # so a supersede expects exactly the revision at which it saw the record current.
        row = await self._pool.fetchrow(self._load_record_sql, stream, record_id)
        assert row is not None
        head = head_of(row["head_revision"], row["head_hash"])
        state = RecordState(row["id"], row["version"], row["superseded_by"]) if row["id"] else None
        return Loaded(state, head)

    async def get_record(self, record_id: str) -> StoredRecord | None:
        row = await self._pool.fetchrow(self._record_sql, record_id)
        return _stored(row) if row else None

    async def list_records(
        self,
        version: str,
        *,
        show_superseded: bool,
        after: Keyset | None = None,
        limit: int | None = None,
        where: filtering.Node | None = None,
    ) -> Sequence[tuple[int, StoredRecord]]:
        after_offset = after[0] if after else -1
        params: list[object] = [version, show_superseded, after_offset, limit]
        sql = self._list_sql
        if where is not None:
            condition = filtering.compile_filter(where, filters.FILTER, filter_columns.FILTER, params)
            sql = sql.replace(" ORDER BY", f" AND ({condition}) ORDER BY", 1)
        rows = await self._pool.fetch(sql, *params)
        return [(r["offset"], _stored(r)) for r in rows]

    async def nodes(self, ids: Sequence[str]) -> Sequence[Node]:
        return [_node(r) for r in await self._pool.fetch(self._nodes_sql, list(ids))]

    async def record_names(self, record_ids: Sequence[str]) -> dict[str, str]:
        rows = await self._pool.fetch(self._record_versions_sql, list(record_ids))
        return {r["id"]: r["name"] for r in rows}

    async def walk(
        self,
        start: Sequence[str],
        direction: Direction,
        max_hops: int,
        hops_field: str = "query.max_hops",
        as_of: datetime | None = None,
    ) -> Subgraph:
        """Breadth-first over current edges (or those in effect at `as_of`), one statement per
        hop for the whole frontier.

        Start nodes that are not in the graph (at `as_of`) are dropped. An edge is part of the
        result when the walk follows it, i.e. from a node fewer than max_hops away.
        """
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            # One snapshot for every hop: a concurrent projection batch cannot tear the walk.
            if as_of is None:
                rows = await conn.fetch(
                    self._nodes_sql.replace("id, type, attributes::text", "id"), list(start)
                )
            else:
                rows = await conn.fetch(self._start_as_of_sql, list(start), as_of, version_node_id(""))
            at: tuple[datetime, ...] = () if as_of is None else (as_of,)
            edges_sql = self._edges_sql if as_of is None else self._edges_as_of_sql
            depth: dict[str, int] = {r["id"]: 0 for r in rows}
            edges: dict[Edge, str] = {}
            frontier = sorted(depth)
            down = direction in (Direction.DOWNSTREAM, Direction.BIDIRECTIONAL)
            up = direction in (Direction.UPSTREAM, Direction.BIDIRECTIONAL)
            for hop in range(1, max_hops + 1):
                if not frontier:
                    break
                in_frontier = set(frontier)
                following: list[str] = []
                for row in await conn.fetch(edges_sql[direction], frontier, *at):
                    edge = Edge(row["source"], row["target"], row["relation"])
                    for near, far, allowed in (
                        (edge.source, edge.target, down),
                        (edge.target, edge.source, up),
                    ):
                        if allowed and near in in_frontier:
                            edges.setdefault(edge, row["record_id"])
                            if far not in depth:
                                depth[far] = hop
                                following.append(far)
                if len(depth) > self._max_nodes:
                    raise InvalidArgument.of(
                        hops_field, f"the walk reaches more than {self._max_nodes} nodes; lower it"
                    )
                frontier = following
        return Subgraph(depth, edges)


class PostgresVersionDirectory:
    """The VersionDirectory port over the reference cache."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        s = quote_schema(schema)
        self._pool = pool
        self._sql = f"SELECT name, deleted FROM {s}.known_versions WHERE name = ANY($1::text[])"

    async def states(self, names: Sequence[str]) -> dict[str, bool]:
        """name -> deleted, for the names the cache knows."""
        rows = await self._pool.fetch(self._sql, list(names))
        return {r["name"]: r["deleted"] for r in rows}


class PostgresStageDirectory:
    """The StageDirectory port over the promotion pointer cache."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        s = quote_schema(schema)
        self._pool = pool
        self._sql = (
            f"SELECT DISTINCT model || '/versions/' || version AS name FROM {s}.stage_pointers"
            " WHERE lower(pointer) = ANY($1::text[])"
        )

    async def versions_in(self, stages: Sequence[str]) -> set[str]:
        # Stage pointers are upper case (`PRODUCTION`), aliases lower case: a
        # caller's `production` means the stage.
        return {r["name"] for r in await self._pool.fetch(self._sql, [s.lower() for s in stages])}

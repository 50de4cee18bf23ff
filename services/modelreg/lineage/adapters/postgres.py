"""The lineage read model in PostgreSQL, the versioning reference cache, and the reader.

Layout:
- lineage_records: one row per record, the validated record as protobuf bytes,
  and its history links (supersedes / superseded_by).
- lineage_nodes: one row per node identity; attributes as first recorded.
- lineage_edges: one row per (record, edge); `current` is false once the
  record is superseded. Partial indexes on source and target over current
  edges serve the walk in both directions.

The walk is a batched breadth-first search: one indexed statement per hop for
the whole frontier. A recursive CTE would have to carry a visited set to stay
bounded on a graph with shared nodes (UNION dedups on (node, depth), not
node), and the frontier query is just as few round trips for the hop limits
allowed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC

import asyncpg

from modelreg import filtering
from modelreg.commands.contracts import Loaded
from modelreg.errors import InvalidArgument
from modelreg.eventlog import EMPTY_HEAD, head_of
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from modelreg.lineage.adapters import codec
from modelreg.lineage.domain import query
from modelreg.lineage.domain.events import LineageRecorded
from modelreg.lineage.domain.queries import Direction, StoredRecord, Subgraph
from modelreg.lineage.domain.state import RecordState
from modelreg.lineage.domain.values import Edge, Node, NodeType, graph_of
from modelreg.lineage.resources import record_from_proto
from modelreg.paging import Keyset
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.pointers import net_pointer_changes, write_pointer_changes
from modelreg.projections.schema import quote_schema

MAX_SUBGRAPH_NODES = 50_000
"""A walk that reaches more nodes than this is refused: lower max_hops."""

RECORD_COLUMNS = (
    'id::text, version, "offset", body, create_time, creator, supersedes::text, superseded_by::text, reason'
)


class LineageProjection:
    """Folds `modelreg.lineage.v1` into the records, nodes and edges tables."""

    name = "lineage"
    read_model_tables = ("lineage_records", "lineage_nodes", "lineage_edges")
    stream_scope = ""

    def ddl(self, schema: str) -> str:
        s = quote_schema(schema)
        return f"""
CREATE TABLE IF NOT EXISTS {s}.lineage_records (
    id            uuid PRIMARY KEY,
    model         text NOT NULL,
    version       text NOT NULL COLLATE "C",
    "offset"      bigint NOT NULL,
    body          bytea NOT NULL,
    create_time   timestamptz NOT NULL,
    creator       text NOT NULL,
    supersedes    uuid,
    superseded_by uuid,
    reason        text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS lineage_records_by_version ON {s}.lineage_records (version, "offset");
CREATE TABLE IF NOT EXISTS {s}.lineage_nodes (
    id         text PRIMARY KEY COLLATE "C",
    type       text NOT NULL,
    attributes jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.lineage_edges (
    record_id uuid NOT NULL,
    version   text NOT NULL,
    source    text NOT NULL COLLATE "C",
    target    text NOT NULL COLLATE "C",
    relation  text NOT NULL,
    current   boolean NOT NULL,
    PRIMARY KEY (record_id, source, target, relation)
);
CREATE INDEX IF NOT EXISTS lineage_edges_by_source
    ON {s}.lineage_edges (source) INCLUDE (target, relation, record_id) WHERE current;
CREATE INDEX IF NOT EXISTS lineage_edges_by_target
    ON {s}.lineage_edges (target) INCLUDE (source, relation, record_id) WHERE current;
"""

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        records: list[tuple[object, ...]] = []
        nodes: dict[str, Node] = {}
        edges: list[tuple[object, ...]] = []
        supersedes: list[tuple[str, str]] = []
        for accepted in events:
            envelope = accepted.envelope
            event = codec.decode(envelope)
            if event is None:
                continue
            record_id = envelope.event_id
            record = event.record
            previous = None if isinstance(event, LineageRecorded) else event.superseded_record
            reason = "" if isinstance(event, LineageRecorded) else event.reason
            payload = envelope.lineage_recorded if previous is None else envelope.lineage_record_superseded
            records.append(
                (
                    record_id,
                    envelope.stream,
                    record.model_version,
                    accepted.position.offset,
                    payload.record.SerializeToString(deterministic=True),
                    envelope.occurred_at.ToDatetime(tzinfo=UTC),
                    envelope.actor,
                    previous,
                    reason,
                )
            )
            record_nodes, record_edges = graph_of(record)
            for node in record_nodes:
                nodes.setdefault(node.id, node)  # in log order: the first statement of a node wins
            edges.extend(
                (record_id, record.model_version, e.source, e.target, e.relation) for e in record_edges
            )
            if previous is not None:
                supersedes.append((previous, record_id))
        if not records:
            return
        await conn.execute(
            f"INSERT INTO {s}.lineage_records"
            ' (id, model, version, "offset", body, create_time, creator, supersedes, reason)'
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::bytea[],"
            " $6::timestamptz[], $7::text[], $8::uuid[], $9::text[])",
            *[list(c) for c in zip(*records, strict=True)],
        )
        # Nodes are shared across models, so batches of different partitions insert the same
        # ids concurrently; in id order they queue on each other instead of deadlocking.
        ordered = [nodes[i] for i in sorted(nodes)]
        await conn.execute(
            f"INSERT INTO {s}.lineage_nodes (id, type, attributes)"
            " SELECT i, t, a::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) AS u(i, t, a)"
            " ON CONFLICT (id) DO NOTHING",
            [n.id for n in ordered],
            [n.type.value for n in ordered],
            [json.dumps(dict(n.attributes), sort_keys=True) for n in ordered],
        )
        if edges:
            await conn.execute(
                f"INSERT INTO {s}.lineage_edges (record_id, version, source, target, relation, current)"
                " SELECT r, v, so, ta, re, true"
                " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])"
                " AS u(r, v, so, ta, re)",
                *[list(c) for c in zip(*edges, strict=True)],
            )
        if supersedes:
            # After the inserts: a record may be recorded and superseded within one batch.
            old = [o for o, _ in supersedes]
            new = [n for _, n in supersedes]
            await conn.execute(
                f"UPDATE {s}.lineage_records r SET superseded_by = u.new"
                " FROM unnest($1::uuid[], $2::uuid[]) AS u(old, new) WHERE r.id = u.old",
                old,
                new,
            )
            await conn.execute(
                f"UPDATE {s}.lineage_edges SET current = false WHERE record_id = ANY($1::uuid[])", old
            )


class VersionCache:
    """A reference cache of `modelreg.versioning.v1`: which versions exist, used only to
    validate commands. It decodes the versioning payloads from the generated protos and
    imports nothing of the versioning service."""

    name = "versioning-cache"
    read_model_tables = ("known_versions",)
    # The versioning topic keys its streams by model name, as the lineage topic does:
    # scoped, so the two folds keep separate stream heads in this schema.
    stream_scope = "modelreg.versioning.v1|"

    def ddl(self, schema: str) -> str:
        s = quote_schema(schema)
        return f"""
CREATE TABLE IF NOT EXISTS {s}.known_versions (
    name    text PRIMARY KEY,
    deleted boolean NOT NULL
);
"""

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        changes: dict[str, bool] = {}
        for accepted in events:
            envelope = accepted.envelope
            field = envelope.WhichOneof("payload")
            if field == "model_version_created":
                version = envelope.model_version_created.model_version
                name = version.name or f"{envelope.stream}/versions/{version.version}"
                changes[name] = False
            elif field == "model_version_deleted":
                changes[envelope.model_version_deleted.name] = True
        if changes:
            await conn.execute(
                f"INSERT INTO {s}.known_versions (name, deleted)"
                " SELECT * FROM unnest($1::text[], $2::boolean[])"
                " ON CONFLICT (name) DO UPDATE SET deleted = EXCLUDED.deleted",
                list(changes),
                list(changes.values()),
            )


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
        self._nodes_sql = (
            f"SELECT id, type, attributes::text FROM {s}.lineage_nodes WHERE id = ANY($1::text[])"
        )
        self._record_versions_sql = (
            f"SELECT id::text, version FROM {s}.lineage_records WHERE id = ANY($1::uuid[])"
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
            sql = sql.replace(
                " ORDER BY", f" AND ({filtering.compile_filter(where, query.FILTER, params)}) ORDER BY", 1
            )
        rows = await self._pool.fetch(sql, *params)
        return [(r["offset"], _stored(r)) for r in rows]

    async def nodes(self, ids: Sequence[str]) -> Sequence[Node]:
        return [_node(r) for r in await self._pool.fetch(self._nodes_sql, list(ids))]

    async def record_versions(self, record_ids: Sequence[str]) -> dict[str, str]:
        rows = await self._pool.fetch(self._record_versions_sql, list(record_ids))
        return {r["id"]: r["version"] for r in rows}

    async def walk(
        self, start: Sequence[str], direction: Direction, max_hops: int, hops_field: str = "query.max_hops"
    ) -> Subgraph:
        """Breadth-first over current edges, one statement per hop for the whole frontier.

        Start nodes that are not in the graph are dropped. An edge is part of the
        result when the walk follows it, i.e. from a node fewer than max_hops away.
        """
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            # One snapshot for every hop: a concurrent projection batch cannot tear the walk.
            rows = await conn.fetch(self._nodes_sql.replace("id, type, attributes::text", "id"), list(start))
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
                for row in await conn.fetch(self._edges_sql[direction], frontier):
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


class PointerCache:
    """A reference cache of `modelreg.promotion.v1`: which version each stage or alias
    names, used only to filter FindDownstream by stage."""

    name = "promotion-cache"
    read_model_tables = ("stage_pointers",)
    stream_scope = "modelreg.promotion.v1|"

    def ddl(self, schema: str) -> str:
        s = quote_schema(schema)
        return f"""
CREATE TABLE IF NOT EXISTS {s}.stage_pointers (
    model   text NOT NULL,
    pointer text NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (model, pointer)
);
"""

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        # Deployments' traffic splits name versions too, but no stage: not kept here.
        changes = net_pointer_changes((a.envelope for a in events), deployments=False)
        await write_pointer_changes(conn, f"{quote_schema(schema)}.stage_pointers", changes)


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

"""The catalog's reads: loads for deciding, gets, and the search, whose filter compiles
through modelreg.filtering with the catalog's field schema."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from modelreg.catalog.adapters import filter_columns
from modelreg.catalog.adapters.schema import COLUMNS, NAMESPACE_COLUMNS, model_from_row, namespace_from_row
from modelreg.catalog.application.ports import SearchQuery
from modelreg.catalog.domain.filters import FILTER, SortKey
from modelreg.catalog.domain.state import Namespace, RegisteredModel
from modelreg.commands.contracts import Loaded
from modelreg.eventlog import StreamHead, head_of
from modelreg.filtering import Compiler
from modelreg.names import ModelName, parse_model_name
from modelreg.projections.schema import quote_schema


class PostgresCatalogReader:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._s = s = quote_schema(schema)
        self._load_sql = (
            f"SELECT h.revision AS head_revision, h.hash AS head_hash, m.*"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
            f" LEFT JOIN {s}.registered_models m ON m.name = wanted.stream"
        )
        self._load_namespace_sql = (
            f"SELECT h.revision AS head_revision, h.hash AS head_hash, n.*"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
            f" LEFT JOIN {s}.namespaces n ON 'namespaces/' || n.name = wanted.stream"
        )
        self._get_sql = f"SELECT {COLUMNS} FROM {s}.registered_models WHERE name = $1"
        self._holder_sql = (
            f"SELECT name FROM {s}.registered_models WHERE namespace = $1 AND display_name = $2"
            " AND state <> 'deleted' ORDER BY create_time, name LIMIT 1"
        )
        self._get_namespace_sql = f"SELECT {NAMESPACE_COLUMNS} FROM {s}.namespaces WHERE name = $1"
        self._list_namespaces_sql = (
            f"SELECT {NAMESPACE_COLUMNS} FROM {s}.namespaces WHERE name > $1 ORDER BY name LIMIT $2"
        )

    async def load(self, stream: str) -> Loaded[RegisteredModel | None]:
        # One statement, so the model and its stream head come from one snapshot.
        row = await self._pool.fetchrow(self._load_sql, stream)
        assert row is not None
        return Loaded(model_from_row(row) if row["name"] is not None else None, _head(row))

    async def load_namespace(self, stream: str) -> Loaded[Namespace | None]:
        row = await self._pool.fetchrow(self._load_namespace_sql, stream)
        assert row is not None
        return Loaded(namespace_from_row(row) if row["name"] is not None else None, _head(row))

    async def get(self, name: ModelName) -> RegisteredModel | None:
        row = await self._pool.fetchrow(self._get_sql, str(name))
        return model_from_row(row) if row else None

    async def get_namespace(self, namespace: str) -> Namespace | None:
        row = await self._pool.fetchrow(self._get_namespace_sql, namespace)
        return namespace_from_row(row) if row else None

    async def list_namespaces(self, *, after: str | None, limit: int) -> Sequence[Namespace]:
        rows = await self._pool.fetch(self._list_namespaces_sql, after or "", limit)
        return [namespace_from_row(r) for r in rows]

    async def display_name_holder(self, namespace: str, display_name: str) -> ModelName | None:
        name = await self._pool.fetchval(self._holder_sql, namespace, display_name)
        return parse_model_name(name) if name is not None else None

    async def search(self, query: SearchQuery) -> Sequence[RegisteredModel]:
        sql, params = compile_search(self._s, query)
        rows = await self._pool.fetch(sql, *params)
        return [model_from_row(r) for r in rows]


_SORT_COLUMN = {
    SortKey.NAME: "m.model",
    SortKey.DISPLAY_NAME: "m.display_name",
    SortKey.CREATE_TIME: "m.create_time",
    SortKey.UPDATE_TIME: "m.update_time",
}


def compile_search(s: str, query: SearchQuery) -> tuple[str, list[object]]:
    """The SELECT for a search; every value travels as a bind parameter."""
    compiler = Compiler(FILTER, filter_columns.FILTER)
    where = [f"m.namespace = {compiler.param(query.namespace, 'text')}"]
    if not query.show_deleted:
        where.append("m.state <> 'deleted'")
    if query.filter is not None:
        where.append(f"({compiler.node(query.filter)})")
    keys = query.ordering.keys
    if query.after is not None:
        columns = [_SORT_COLUMN[k] for k, _ in keys]
        values = [
            compiler.param(v, "text" if k in (SortKey.NAME, SortKey.DISPLAY_NAME) else "timestamptz")
            for (k, _), v in zip(keys, query.after, strict=True)
        ]
        directions = {d for _, d in keys}
        if len(directions) == 1:
            # A row comparison, which the (namespace, key, model) btree serves directly.
            op = "<" if directions.pop() else ">"
            where.append(f"({', '.join(columns)}) {op} ({', '.join(values)})")
        else:
            alternatives = []
            for i, (_, desc) in enumerate(keys):
                equal = [f"{columns[j]} = {values[j]}" for j in range(i)]
                alternatives.append(
                    " AND ".join([*equal, f"{columns[i]} {'<' if desc else '>'} {values[i]}"])
                )
            where.append("(" + " OR ".join(f"({a})" for a in alternatives) + ")")
    order = ", ".join(f"{_SORT_COLUMN[k]} {'DESC' if d else 'ASC'}" for k, d in keys)
    limit = compiler.param(query.limit, "int")
    sql = (
        f"SELECT {COLUMNS} FROM {s}.registered_models m"
        f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {limit}"
    )
    return sql, compiler.params


def _head(row: asyncpg.Record) -> StreamHead:
    return head_of(row["head_revision"], row["head_hash"])

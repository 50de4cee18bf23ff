"""Grant events <-> their payloads, and the reads AccessService decides and lists from
(the catalog's own fold of them, `access_grants`, kept by modelreg.access.log)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from google.protobuf.message import Message

from modelreg.access.log import read_grants
from modelreg.access.roles import Grant
from modelreg.catalog.domain.access import AccessEvent, GrantRecord, RoleGranted
from modelreg.commands.contracts import Loaded
from modelreg.eventlog.fold import EMPTY_HEAD, head_of
from modelreg.gen.catalog.v1 import access_pb2, events_pb2
from modelreg.projections.schema import quote_schema


def encode(event: AccessEvent) -> tuple[str, Message]:
    grant = event.grant
    role = access_pb2.Role.ValueType(grant.role)
    if isinstance(event, RoleGranted):
        return "role_granted", events_pb2.RoleGranted(
            namespace=grant.namespace, subject=grant.subject, role=role
        )
    return "role_revoked", events_pb2.RoleRevoked(namespace=grant.namespace, subject=grant.subject, role=role)


class PostgresGrantsReader:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._schema = schema
        s = quote_schema(schema)
        self._head_sql = (
            f"SELECT revision AS head_revision, hash AS head_hash FROM {s}.stream_heads WHERE stream = $1"
        )

    async def load_grants(self, stream: str) -> Loaded[frozenset[Grant]]:
        namespace = stream.split("/")[1]
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(self._head_sql, stream)
            rows = await read_grants(conn, self._schema, namespace)
        head = head_of(row["head_revision"], row["head_hash"]) if row else EMPTY_HEAD
        return Loaded(frozenset(r.grant for r in rows), head)

    async def list_grants(self, namespace: str) -> Sequence[GrantRecord]:
        return [
            GrantRecord(r.grant, r.granted_by, r.grant_time)
            for r in await read_grants(self._pool, self._schema, namespace)
        ]

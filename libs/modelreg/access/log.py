"""Access on the log. Grants: the reference cache every service folds from the grant events on
`modelreg.catalog.v1` (RoleGranted / RoleRevoked, stream `namespaces/{ns}/grants`), and
the source enforcement reads it through.

The cache is a table of the service's own schema, fed by exactly one topic (DESIGN.md
rule 7). It is read again only when this process has seen the catalog topic move (the
positions its LISTEN connection keeps), so a call costs no query while grants stand still.

Denials: DenialLog records each refused call of an authenticated caller on the service's
own topic (promotion records its own AccessDenied, which ListAccessDenials reads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import asyncpg
import structlog

from modelreg.access.enforce import Denial
from modelreg.access.roles import Grant, Grants, Role, valid_namespace, valid_subject
from modelreg.access.summaries import Summary
from modelreg.commands.contracts import Loaded
from modelreg.commands.executor import Command, CommandExecutor
from modelreg.eventlog import EventContext
from modelreg.eventlog.fold import EMPTY_HEAD, head_of
from modelreg.gen.common.v1 import access_pb2
from modelreg.projections.batch import AcceptedEvent, ProjectionHandler
from modelreg.projections.schema import quote_schema

log = structlog.get_logger(__name__)

GRANTS_TOPIC = "modelreg.catalog.v1"
"""The topic the grant events are on (logical name)."""
GRANTS_TABLE = "access_grants"


def grants_ddl(schema: str) -> str:
    s = quote_schema(schema)
    return (
        f"CREATE TABLE IF NOT EXISTS {s}.{GRANTS_TABLE} ("
        " namespace text NOT NULL, subject text NOT NULL, role smallint NOT NULL,"
        " granted_by text NOT NULL, grant_time timestamptz NOT NULL,"
        " PRIMARY KEY (namespace, subject, role));"
    )


@dataclass(frozen=True, slots=True)
class LoggedGrant:
    grant: Grant
    granted_by: str
    grant_time: datetime


async def read_grants(
    conn: asyncpg.Connection | asyncpg.Pool, schema: str, namespace: str | None = None
) -> list[LoggedGrant]:
    s = quote_schema(schema)
    sql = f"SELECT namespace, subject, role, granted_by, grant_time FROM {s}.{GRANTS_TABLE}"
    rows = await (
        conn.fetch(sql + " WHERE namespace = $1 ORDER BY subject, role", namespace)
        if namespace is not None
        else conn.fetch(sql)
    )
    return [
        LoggedGrant(Grant(r["subject"], r["namespace"], Role(r["role"])), r["granted_by"], r["grant_time"])
        for r in rows
    ]


def _grant_of(namespace: str, subject: str, role: int) -> Grant | None:
    """The grant an event names; None for one no command produces (skipped the same way by
    every consumer, so the fold stays total)."""
    if not (valid_namespace(namespace) and namespace != "*" and valid_subject(subject)):
        return None
    if role not in Role._value2member_map_:
        return None
    return Grant(subject, namespace, Role(role))


class GrantsProjection:
    """Folds the grant events into `<schema>.access_grants`."""

    name = "access-grants"
    read_model_tables = (GRANTS_TABLE,)

    def __init__(self, stream_scope: str = "catalog:") -> None:
        self.stream_scope = stream_scope

    def ddl(self, schema: str) -> str:
        return grants_ddl(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        for accepted in events:
            envelope = accepted.envelope
            kind = envelope.WhichOneof("payload")
            if kind not in ("role_granted", "role_revoked"):
                continue
            fact = envelope.role_granted if kind == "role_granted" else envelope.role_revoked
            grant = _grant_of(fact.namespace, fact.subject, int(fact.role))
            if grant is None:
                log.warning("grant_event_does_not_fit", event_id=envelope.event_id)
                continue
            if kind == "role_granted":
                await conn.execute(
                    f"INSERT INTO {s}.{GRANTS_TABLE} (namespace, subject, role, granted_by, grant_time)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    grant.namespace,
                    grant.subject,
                    int(grant.role),
                    envelope.actor,
                    envelope.occurred_at.ToDatetime(tzinfo=UTC),
                )
            else:
                await conn.execute(
                    f"DELETE FROM {s}.{GRANTS_TABLE} WHERE namespace = $1 AND subject = $2 AND role = $3",
                    grant.namespace,
                    grant.subject,
                    int(grant.role),
                )


class WithGrants:
    """A handler of the catalog topic that also folds the grant events (a topic has one
    handler per schema): its own tables plus `access_grants`, in one transaction."""

    def __init__(self, inner: ProjectionHandler) -> None:
        self._inner = inner
        self._grants = GrantsProjection(inner.stream_scope)
        self.name = inner.name
        self.read_model_tables = (*inner.read_model_tables, GRANTS_TABLE)
        self.stream_scope = inner.stream_scope

    def ddl(self, schema: str) -> str:
        return self._inner.ddl(schema) + "\n" + self._grants.ddl(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        await self._inner.apply(conn, schema, events)
        await self._grants.apply(conn, schema, events)


def with_grants(
    projections: Sequence[tuple[str, ProjectionHandler]],
) -> list[tuple[str, ProjectionHandler]]:
    """A service's projections, folding the grant events too: into its handler of the catalog
    topic when it has one, else with a handler of its own."""
    out: list[tuple[str, ProjectionHandler]] = []
    folded = False
    for topic, handler in projections:
        if topic == GRANTS_TOPIC:
            handler, folded = WithGrants(handler), True
        out.append((topic, handler))
    if not folded:
        out.append((GRANTS_TOPIC, GrantsProjection()))
    return out


def folds_grants(projections: Sequence[tuple[str, ProjectionHandler]]) -> bool:
    return any(isinstance(h, GrantsProjection | WithGrants) for t, h in projections if t == GRANTS_TOPIC)


class Positions(Protocol):
    def position(self, topic: str, partition: int) -> int: ...


class LogGrants:
    """The folded grants of one schema, read again when the catalog topic has moved."""

    def __init__(
        self, pool: asyncpg.Pool, schema: str, progress: Positions, topic: str, partitions: int
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._progress = progress
        self._topic = topic
        self._partitions = partitions
        self._key: tuple[int, ...] | None = None
        self._grants = Grants()
        self._loading: asyncio.Future[None] | None = None

    def _positions(self) -> tuple[int, ...]:
        return tuple(self._progress.position(self._topic, p) for p in range(self._partitions))

    async def current(self) -> Grants:
        """The grants as folded at least as far as this process has seen the topic go."""
        wanted = self._positions()
        if self._key == wanted:
            return self._grants
        for _ in range(2):  # a load already under way may have started before `wanted`
            if self._loading is None or self._loading.done():
                self._loading = asyncio.ensure_future(self._load())
            await asyncio.shield(self._loading)
            if self._key is not None and all(k >= w for k, w in zip(self._key, wanted, strict=True)):
                break
        return self._grants

    async def _load(self) -> None:
        key = self._positions()
        rows = await read_grants(self._pool, self._schema)
        self._grants = Grants.of(r.grant for r in rows)
        self._key = key


UNVERIFIED_ACTOR = "unauthenticated"
"""The actor of a summary of refusals of callers whose credential did not verify."""


def denials_stream(namespace: str) -> str:
    return f"namespaces/{namespace or '*'}/access-denials"


class DenialLog:
    """Records a denial on the service's own topic: an append-only AccessDenied fact, with the
    refused call's correlation id and no request_id (it is not the client's request)."""

    def __init__(self, executor: CommandExecutor, pool: asyncpg.Pool, schema: str) -> None:
        self._executor = executor
        self._pool = pool
        self._head_sql = f"SELECT revision, hash FROM {quote_schema(schema)}.stream_heads WHERE stream = $1"

    async def _head(self, stream: str) -> Loaded[None]:
        row = await self._pool.fetchrow(self._head_sql, stream)
        return Loaded(None, head_of(row["revision"], row["hash"]) if row else EMPTY_HEAD)

    async def record_summary(self, summary: Summary) -> None:
        """One window's refusals of a caller with no verified identity (access/summaries.py)."""
        denial = summary.denial
        actor = denial.principal or UNVERIFIED_ACTOR
        await self.record(denial, EventContext(actor=actor), count=summary.count, peer=summary.peer)

    async def record(self, denial: Denial, context: EventContext, *, count: int = 0, peer: str = "") -> None:
        fact = access_pb2.AccessDenied(
            principal=denial.principal,
            action=denial.action,
            resource=denial.resource,
            reason=denial.reason,
            namespace=denial.namespace,
            count=count,
            peer=peer,
        )
        own = EventContext(
            actor=context.actor, correlation_id=context.correlation_id, causation_id=context.causation_id
        )
        await self._executor.execute(
            Command(
                stream=denials_stream(denial.namespace),
                context=own,
                load=self._head,
                decide=lambda _: ("access_refused", fact),
                append_only=True,
            )
        )

"""The AccessService use cases: grant and revoke through the log, list what applies.

The role check (admin of the namespace) is the interceptor's, from the one permission
table; here the command is decided against the namespace's grant stream."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from modelreg.access.roles import ALL_NAMESPACES, Grant, Grants, grants_stream
from modelreg.catalog.domain.access import (
    AccessEvent,
    GrantRecord,
    GrantRole,
    RevokeRole,
    decide_access,
)
from modelreg.commands.contracts import Commands, Loaded
from modelreg.eventlog import ConsistencyToken, EventContext


class GrantsReader(Protocol):
    async def load_grants(self, stream: str) -> Loaded[frozenset[Grant]]: ...

    async def list_grants(self, namespace: str) -> Sequence[GrantRecord]: ...


@dataclass(frozen=True, slots=True)
class WrittenGrant:
    record: GrantRecord
    token: ConsistencyToken


class AccessAdmin:
    def __init__(
        self,
        reader: GrantsReader,
        commands: Commands[frozenset[Grant], AccessEvent],
        bootstrap: Callable[[], Grants],
    ) -> None:
        self._reader = reader
        self._commands = commands
        self._bootstrap = bootstrap

    async def grant(self, grant: Grant, context: EventContext) -> WrittenGrant:
        return await self._run(GrantRole(grant), context)

    async def revoke(self, grant: Grant, context: EventContext) -> WrittenGrant:
        return await self._run(RevokeRole(grant), context)

    async def _run(self, command: GrantRole | RevokeRole, context: EventContext) -> WrittenGrant:
        result = await self._commands.run(
            grants_stream(command.grant.namespace), context, lambda state: decide_access(state, command)
        )
        records = {r.grant: r for r in await self._reader.list_grants(command.grant.namespace)}
        return WrittenGrant(records.get(command.grant, GrantRecord(command.grant)), result.token)

    async def list(self, namespace: str) -> list[GrantRecord]:
        bootstrap = [
            GrantRecord(g, bootstrap=True)
            for g in self._bootstrap().all()
            if g.namespace in (namespace, ALL_NAMESPACES)
        ]
        logged = list(await self._reader.list_grants(namespace))
        return sorted([*bootstrap, *logged], key=lambda r: (r.grant.subject, r.grant.role, not r.bootstrap))

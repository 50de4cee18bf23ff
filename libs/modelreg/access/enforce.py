"""Enforcement of the method -> permission table, called once per call by the interceptor.

RBAC is on when MODELREG_ROLES or MODELREG_ADMINS is set, and off (every caller is
admin everywhere, logged loudly and shown in health as `<service>.rbac` NOT_SERVING)
only when neither is. Grants come from those variables (the bootstrap: who may grant
first) and from the grant events on the log, which the service folds into a reference
cache (`sources`).

A denial is raised as PermissionDenied before the handler runs, so nothing else is
appended; an authenticated caller's denial is handed to the service's recorder, which
records it on the log.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

import structlog

from modelreg.access.roles import (
    ADMINS_ENV,
    ALL_NAMESPACES,
    ROLES_ENV,
    Grants,
    Role,
    parse_grants,
)
from modelreg.access.table import TABLE, Permission, Scope, action_of
from modelreg.errors import InvalidArgument, PermissionDenied
from modelreg.names import ID_PATTERN

log = structlog.get_logger(__name__)

ANONYMOUS = "anonymous"
NODE_NAMESPACE_PREFIX = ":namespaces/"


@dataclass(frozen=True, slots=True)
class Denial:
    principal: str
    action: str
    resource: str
    namespace: str
    """The namespace the role was missing in, or `*` for a store-wide call."""
    reason: str


DenialRecorder = Callable[[Denial], Awaitable[None]]

_readable: ContextVar[Callable[[str], bool]] = ContextVar("modelreg_readable", default=lambda _: True)


def may_read(namespace: str) -> bool:
    """May the caller of the current call read this namespace? For reads that span
    namespaces (their results show only these); True when RBAC is off or outside a call."""
    return _readable.get()(namespace)


class GrantSource(Protocol):
    """Grants beyond the bootstrap: the service's fold of the grant events."""

    async def current(self) -> Grants: ...


def namespace_in(value: str, *, bare: bool = False) -> str | None:
    """The namespace a resource name, a lineage node id (`kind:namespaces/...`) or, with
    `bare`, a namespace id names; None when it names none."""
    if bare:
        return value if ID_PATTERN.fullmatch(value) else None
    if not value.startswith("namespaces/"):
        kind, sep, rest = value.partition(":")
        if not sep or not kind or not rest.startswith("namespaces/"):
            return None
        value = rest
    namespace = value.split("/", 2)[1]
    return namespace if ID_PATTERN.fullmatch(namespace) else None


def field_values(request: object, path: str) -> list[str]:
    """The string values at a dotted path of a message; a repeated field gives each element."""
    value: object = request
    for part in path.split("."):
        value = getattr(value, part, "")
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [v for v in value if isinstance(v, str)]
    return []


class AccessControl:
    def __init__(
        self,
        bootstrap: Grants,
        *,
        enabled: bool,
        table: Mapping[str, Permission] = TABLE,
    ) -> None:
        self.bootstrap = bootstrap
        self.enabled = enabled
        self._table = table
        self._source: GrantSource | None = None
        self.logged = Grants()
        """The grants from the log, as last read from the source."""
        self._recorder: DenialRecorder | None = None
        self._unverified: Callable[[Denial], None] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AccessControl:
        roles, admins = environ.get(ROLES_ENV, "").strip(), environ.get(ADMINS_ENV, "").strip()
        return cls(parse_grants(roles, admins), enabled=bool(roles or admins))

    @classmethod
    def disabled(cls) -> AccessControl:
        return cls(Grants(), enabled=False)

    def describe(self) -> str:
        if not self.enabled:
            return f"RBAC off: every caller is admin everywhere (set {ROLES_ENV} or {ADMINS_ENV})"
        return f"RBAC on: {len(self.bootstrap)} bootstrap grants from {ROLES_ENV}/{ADMINS_ENV}"

    # Wiring ------------------------------------------------------------------

    def follow(self, source: GrantSource) -> None:
        """Grants beyond the bootstrap: the service's cache of the grant events."""
        self._source = source

    async def refresh(self) -> None:
        """Reads the grants from the log again, if they may have changed."""
        if self._source is not None:
            self.logged = await self._source.current()

    def on_denied(self, recorder: DenialRecorder) -> None:
        """The service's recorder of denials (on its own topic)."""
        self._recorder = recorder

    def on_unverified_denied(self, note: Callable[[Denial], None]) -> None:
        """Where anonymous callers' denials are counted (access/summaries.py), not appended."""
        self._unverified = note

    # Questions ---------------------------------------------------------------

    def role(
        self, principal: str, groups: Iterable[str], namespace: str, *, logged: bool = True
    ) -> Role | None:
        """The principal's highest role in a namespace (admin everywhere when RBAC is off);
        `logged=False` counts only the bootstrap grants."""
        if not self.enabled:
            return Role.ADMIN
        groups = tuple(groups)
        held = [
            r
            for grants in ((self.bootstrap, self.logged) if logged else (self.bootstrap,))
            if (r := grants.role(principal, groups, namespace)) is not None
        ]
        return max(held) if held else None

    def allows(self, principal: str, groups: Iterable[str], namespace: str, needed: Role) -> bool:
        role = self.role(principal, groups, namespace)
        return role is not None and role >= needed

    def readable(self, principal: str, groups: Iterable[str]) -> Callable[[str], bool]:
        """A predicate: may the principal read this namespace? For filtering results (the
        interceptor has refreshed the logged grants for this call)."""
        if not self.enabled:
            return lambda _: True
        groups = tuple(groups)
        return lambda namespace: self.allows(principal, groups, namespace, Role.VIEWER)

    def check(
        self, method: str, request: object, principal: str, groups: Iterable[str], *, logged: bool = True
    ) -> Denial | None:
        """The denial of this call, or None when the table lets it through."""
        if not self.enabled:
            return None
        rule = self._table.get(method)
        action = action_of(method)
        if rule is None:
            # A method the table does not know is refused: a new method is closed until listed.
            return Denial(
                principal, action, method, ALL_NAMESPACES, f"{action} is not in the permission table"
            )
        groups = tuple(groups)
        if rule.scope is Scope.STORE:
            return self._need(principal, groups, ALL_NAMESPACES, rule.role, action, ALL_NAMESPACES, logged)
        for path in rule.fields:
            values = field_values(request, path)
            if not values and rule.scope is Scope.NAMESPACE:
                values = [""]
            for value in values:
                if not value:
                    if rule.scope is Scope.FILTERED:
                        continue
                    if rule.empty_means_all:
                        if denial := self._need(
                            principal, groups, ALL_NAMESPACES, rule.role, action, "*", logged
                        ):
                            return denial
                        continue
                    raise InvalidArgument.of(path, "is required")
                namespace = namespace_in(value, bare=rule.bare_namespace)
                if namespace is None:
                    if rule.scope is Scope.FILTERED:
                        continue
                    raise InvalidArgument.of(
                        path,
                        f"{value[:200]!r} names no namespace"
                        + ("" if rule.bare_namespace else " (expected namespaces/{namespace}/...)"),
                    )
                if denial := self._need(principal, groups, namespace, rule.role, action, value, logged):
                    return denial
        return None

    def _need(
        self,
        principal: str,
        groups: tuple[str, ...],
        namespace: str,
        needed: Role,
        action: str,
        resource: str,
        logged: bool,
    ) -> Denial | None:
        held = self.role(principal, groups, namespace, logged=logged)
        if held is not None and held >= needed:
            return None
        where = "every namespace (*)" if namespace == ALL_NAMESPACES else f"namespace {namespace}"
        has = held.label if held else "none"
        reason = f"{action} needs the {needed.label} role in {where}; {principal} has {has}"
        return Denial(principal, action, resource, namespace, reason)

    # Enforcement -------------------------------------------------------------

    async def authorize(
        self,
        method: str,
        request: object,
        principal: str,
        groups: Iterable[str],
        catch_up: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Raises PermissionDenied (after recording the denial) unless the call is allowed.

        `catch_up` waits for the caller's consistency token. A call that the bootstrap grants
        alone do not allow, and that carries a token, is decided once the service has folded
        that far: a grant or a revocation the caller has seen counts. Returns whether it waited.
        """
        if not self.enabled:
            return False
        groups = tuple(groups)
        await self.refresh()
        denial = self.check(method, request, principal, groups)
        waited = False
        if (
            catch_up is not None
            and self._source is not None
            and (denial is not None or self.check(method, request, principal, groups, logged=False))
        ):
            await catch_up()
            waited = True
            await self.refresh()
            denial = self.check(method, request, principal, groups)
        if denial is not None:
            await self.record(denial)
            raise PermissionDenied(denial.reason)
        _readable.set(self.readable(principal, groups))
        return waited

    async def record(self, denial: Denial) -> None:
        """Hands an authenticated caller's denial to the service's recorder. Anonymous
        callers' denials are counted into a periodic summary instead, so an unauthenticated
        caller cannot grow the log with each call."""
        log.info("access_denied", principal=denial.principal, action=denial.action, reason=denial.reason)
        if denial.principal == ANONYMOUS:
            if self._unverified is not None:
                self._unverified(denial)
        elif self._recorder is not None:
            await self._recorder(denial)

    async def guard_stream(
        self, method: str, requests: AsyncIterator[object], principal: str, groups: Iterable[str]
    ) -> AsyncIterator[object]:
        """A client stream, authorized on its first message (which names the resource)."""
        first = True
        async for message in requests:
            if first:
                await self.authorize(method, message, principal, groups)
                first = False
            yield message

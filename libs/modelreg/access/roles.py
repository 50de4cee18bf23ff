"""Roles per namespace, and who holds them: grants to users and to groups.

Pure: no gRPC, database, Kafka or generated protos (a domain may import it).

A grant gives a subject (a user, or `group:<name>`) a role in one namespace, or in
every namespace (`*`). A principal's role in a namespace is the highest of the
grants to it and to its groups there and on `*`. Roles include the ones below
them: viewer < editor < approver < admin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from modelreg.names import ID_PATTERN

ALL_NAMESPACES = "*"
GROUP_PREFIX = "group:"
ROLES_ENV = "MODELREG_ROLES"
ADMINS_ENV = "MODELREG_ADMINS"

_SUBJECT = re.compile(r"(?:group:)?[^=@,\s:]+")


class Role(IntEnum):
    """Roles per namespace; each includes the ones below it."""

    VIEWER = 1
    EDITOR = 2
    APPROVER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"{text!r} is not a role (viewer, editor, approver, admin)") from None


def grants_stream(namespace: str) -> str:
    """The stream (and Kafka key) of a namespace's grant events on the catalog topic."""
    return f"namespaces/{namespace}/grants"


def group_subject(group: str) -> str:
    return f"{GROUP_PREFIX}{group}"


def valid_subject(subject: str) -> bool:
    return bool(_SUBJECT.fullmatch(subject))


def valid_namespace(namespace: str) -> bool:
    return namespace == ALL_NAMESPACES or bool(ID_PATTERN.fullmatch(namespace))


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    subject: str
    """A principal, or `group:<name>`."""
    namespace: str
    """A namespace, or `*` for every namespace."""
    role: Role

    def __str__(self) -> str:
        return f"{self.subject}={self.role.label}@{self.namespace}"


@dataclass(frozen=True, slots=True)
class Grants:
    """(subject, namespace or '*') -> role: an immutable set of grants."""

    roles: Mapping[tuple[str, str], Role] = field(default_factory=dict)

    @classmethod
    def of(cls, grants: Iterable[Grant]) -> Grants:
        roles: dict[tuple[str, str], Role] = {}
        for grant in grants:
            key = (grant.subject, grant.namespace)
            roles[key] = max(roles.get(key, grant.role), grant.role)
        return cls(roles)

    def all(self) -> list[Grant]:
        return sorted(Grant(s, ns, r) for (s, ns), r in self.roles.items())

    def __len__(self) -> int:
        return len(self.roles)

    def role(self, principal: str, groups: Iterable[str], namespace: str) -> Role | None:
        """The principal's highest role in `namespace` (only `*` grants count for `*`)."""
        subjects = [principal, *(group_subject(g) for g in groups)]
        spaces = (namespace,) if namespace == ALL_NAMESPACES else (namespace, ALL_NAMESPACES)
        held = [r for s in subjects for ns in spaces if (r := self.roles.get((s, ns))) is not None]
        return max(held) if held else None

    def namespaces(self, principal: str, groups: Iterable[str]) -> frozenset[str]:
        """Every namespace (or `*`) in which the principal or one of its groups holds a role."""
        subjects = {principal, *(group_subject(g) for g in groups)}
        return frozenset(ns for (s, ns) in self.roles if s in subjects)


def parse_grants(roles_spec: str, admins_spec: str = "") -> Grants:
    """MODELREG_ROLES (`alice=approver@ns1,group:ml=editor@*`) and MODELREG_ADMINS
    (`root,group:platform`: admin of every namespace)."""
    grants: list[Grant] = []
    for raw in filter(None, (part.strip() for part in roles_spec.split(","))):
        subject, eq, rest = raw.partition("=")
        role, at, namespace = rest.partition("@")
        if not (eq and at and valid_subject(subject) and valid_namespace(namespace)):
            raise ValueError(
                f"{ROLES_ENV}: {raw!r} is not [group:]principal=viewer|editor|approver|admin@namespace"
            )
        try:
            grants.append(Grant(subject, namespace, Role.parse(role)))
        except ValueError as error:
            raise ValueError(f"{ROLES_ENV}: {raw!r}: {error}") from None
    for raw in filter(None, (part.strip() for part in admins_spec.split(","))):
        if not valid_subject(raw):
            raise ValueError(f"{ADMINS_ENV}: {raw!r} is not a principal or group:<name>")
        grants.append(Grant(raw, ALL_NAMESPACES, Role.ADMIN))
    return Grants.of(grants)

"""Grants as commands: granting and revoking a role in a namespace, decided against the
grants the namespace's grant stream holds. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelreg.access.roles import Grant, Role, valid_subject
from modelreg.errors import AlreadyExists, InvalidArgument, NotFound
from modelreg.names import check_id

MAX_SUBJECT_CHARS = 256


@dataclass(frozen=True, slots=True)
class GrantRole:
    grant: Grant


@dataclass(frozen=True, slots=True)
class RevokeRole:
    grant: Grant


@dataclass(frozen=True, slots=True)
class RoleGranted:
    grant: Grant


@dataclass(frozen=True, slots=True)
class RoleRevoked:
    grant: Grant


AccessEvent = RoleGranted | RoleRevoked


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """A grant as the read model holds it."""

    grant: Grant
    granted_by: str = ""
    grant_time: datetime | None = None
    bootstrap: bool = False


def grant_of(namespace: str, subject: str, role: int) -> Grant:
    """Validates a grant named by a request (`namespace` is the id, already parsed)."""
    check_id(namespace, "parent")
    if not subject:
        raise InvalidArgument.of("subject", "is required")
    if len(subject) > MAX_SUBJECT_CHARS or not valid_subject(subject):
        raise InvalidArgument.of(
            "subject",
            f"{subject[:100]!r} is not a principal or group:<name> (no '=', '@', ',', ':' or spaces)",
        )
    if role not in Role._value2member_map_:
        raise InvalidArgument.of("role", "must be ROLE_VIEWER, ROLE_EDITOR, ROLE_APPROVER or ROLE_ADMIN")
    return Grant(subject, namespace, Role(role))


def decide_access(state: frozenset[Grant], command: GrantRole | RevokeRole) -> AccessEvent:
    grant = command.grant
    if isinstance(command, GrantRole):
        if grant in state:
            raise AlreadyExists(
                f"{grant.subject} already holds {grant.role.label} in namespaces/{grant.namespace}"
            )
        return RoleGranted(grant)
    if grant not in state:
        raise NotFound(
            f"{grant.subject} holds no {grant.role.label} grant in namespaces/{grant.namespace} "
            "(grants from MODELREG_ROLES / MODELREG_ADMINS change only with the environment)"
        )
    return RoleRevoked(grant)

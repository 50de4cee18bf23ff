"""What a caller may do: roles per namespace, grants, the method -> permission table, and
its one enforcement (called by the interceptor in every service)."""

from modelreg.access.enforce import AccessControl, Denial, DenialRecorder, may_read, namespace_in
from modelreg.access.roles import ALL_NAMESPACES, Grant, Grants, Role, parse_grants
from modelreg.access.table import TABLE, Permission, Scope, action_of

__all__ = [
    "ALL_NAMESPACES",
    "TABLE",
    "AccessControl",
    "Denial",
    "DenialRecorder",
    "Grant",
    "Grants",
    "Permission",
    "Role",
    "Scope",
    "action_of",
    "may_read",
    "namespace_in",
    "parse_grants",
]

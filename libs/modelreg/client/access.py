"""The access sub-client: grants of roles per namespace (AccessService, served by the
catalog; every call needs the admin role in the namespace)."""

from __future__ import annotations

import uuid

from modelreg.client.blocking import Blocking, Facade
from modelreg.client.connection import Connection
from modelreg.gen.catalog.v1 import access_pb2

ROLES = {
    "viewer": access_pb2.ROLE_VIEWER,
    "editor": access_pb2.ROLE_EDITOR,
    "approver": access_pb2.ROLE_APPROVER,
    "admin": access_pb2.ROLE_ADMIN,
}


def role_of(role: str) -> access_pb2.Role.ValueType:
    try:
        return ROLES[role.lower()]
    except KeyError:
        raise ValueError(f"{role!r} is not a role: {', '.join(ROLES)}") from None


class AccessClient:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def grant(self, namespace: str, subject: str, role: str) -> access_pb2.RoleGrant:
        """Grants `role` (viewer, editor, approver, admin) in `namespace` to a principal or
        `group:<name>`; recorded on the log."""
        connection = self._connection
        return await connection.call(
            connection.access.GrantRole,
            access_pb2.GrantRoleRequest(
                parent=f"namespaces/{namespace}",
                subject=subject,
                role=role_of(role),
                request_id=str(uuid.uuid4()),
            ),
        )

    async def revoke(self, namespace: str, subject: str, role: str) -> access_pb2.RoleGrant:
        """Revokes a role granted with `grant` (not a bootstrap one from the environment)."""
        connection = self._connection
        return await connection.call(
            connection.access.RevokeRole,
            access_pb2.RevokeRoleRequest(
                parent=f"namespaces/{namespace}",
                subject=subject,
                role=role_of(role),
                request_id=str(uuid.uuid4()),
            ),
        )

    async def list_grants(self, namespace: str) -> list[access_pb2.RoleGrant]:
        """The grants that apply in `namespace`, the bootstrap ones included."""
        connection = self._connection
        response = await connection.call(
            connection.access.ListGrants, access_pb2.ListGrantsRequest(parent=f"namespaces/{namespace}")
        )
        return list(response.grants)


class SyncAccessClient(Facade[AccessClient]):
    grant = Blocking(AccessClient.grant)
    revoke = Blocking(AccessClient.revoke)
    list_grants = Blocking(AccessClient.list_grants)

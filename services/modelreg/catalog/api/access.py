"""The AccessService servicer: map the request, call the use case, map the result back."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from modelreg.access.roles import ALL_NAMESPACES
from modelreg.catalog.application.access import AccessAdmin
from modelreg.catalog.domain.access import GrantRecord, grant_of
from modelreg.gen.catalog.v1 import access_pb2, access_pb2_grpc
from modelreg.grpcutil.context import ServicerContext as Context
from modelreg.grpcutil.context import request_context
from modelreg.grpcutil.interceptor import set_token
from modelreg.names import parse_parent


def grant_to_proto(record: GrantRecord) -> access_pb2.RoleGrant:
    grant = record.grant
    message = access_pb2.RoleGrant(
        parent=f"namespaces/{grant.namespace}",
        subject=grant.subject,
        role=access_pb2.Role.ValueType(grant.role),
        granted_by=record.granted_by,
        bootstrap=record.bootstrap,
    )
    if record.grant_time is not None:
        stamp = Timestamp()
        stamp.FromDatetime(record.grant_time)
        message.grant_time.CopyFrom(stamp)
    return message


class AccessServicer(access_pb2_grpc.AccessServiceServicer):
    def __init__(self, access: AccessAdmin) -> None:
        self._access = access

    async def GrantRole(  # noqa: N802 - gRPC method name
        self, request: access_pb2.GrantRoleRequest, context: Context
    ) -> access_pb2.RoleGrant:
        grant = grant_of(parse_parent(request.parent), request.subject, request.role)
        written = await self._access.grant(grant, request_context().event_context())
        set_token(context, written.token)
        return grant_to_proto(written.record)

    async def RevokeRole(  # noqa: N802
        self, request: access_pb2.RevokeRoleRequest, context: Context
    ) -> access_pb2.RoleGrant:
        grant = grant_of(parse_parent(request.parent), request.subject, request.role)
        written = await self._access.revoke(grant, request_context().event_context())
        set_token(context, written.token)
        return grant_to_proto(written.record)

    async def ListGrants(  # noqa: N802
        self, request: access_pb2.ListGrantsRequest, context: Context
    ) -> access_pb2.ListGrantsResponse:
        namespace = parse_parent(request.parent)
        assert namespace != ALL_NAMESPACES
        return access_pb2.ListGrantsResponse(
            grants=[grant_to_proto(r) for r in await self._access.list(namespace)]
        )

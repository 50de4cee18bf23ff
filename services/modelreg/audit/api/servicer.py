"""The audit gRPC servicer: map the request, call the use case, map the result back."""

from __future__ import annotations

from collections.abc import AsyncIterator

from modelreg.audit.api import mapping
from modelreg.audit.application.use_cases import Audit
from modelreg.gen.audit.v1 import audit_pb2 as pb
from modelreg.gen.audit.v1 import audit_pb2_grpc
from modelreg.grpcutil.context import ServicerContext as Context

CHUNK_BYTES = 1 << 20


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, audit: Audit) -> None:
        self._audit = audit

    async def ListAuditEvents(  # noqa: N802 - gRPC method name
        self, request: pb.ListAuditEventsRequest, context: Context
    ) -> pb.ListAuditEventsResponse:
        page = await self._audit.list_entries(
            request.parent, request.filter, request.page_size, request.page_token
        )
        return pb.ListAuditEventsResponse(
            audit_events=[mapping.entry_out(e) for e in page.items], next_page_token=page.next_page_token
        )

    async def ListAuditKeys(  # noqa: N802
        self, request: pb.ListAuditKeysRequest, context: Context
    ) -> pb.ListAuditKeysResponse:
        return pb.ListAuditKeysResponse(keys=[mapping.key_out(k) for k in self._audit.keys()])

    async def ListCheckpoints(  # noqa: N802
        self, request: pb.ListCheckpointsRequest, context: Context
    ) -> pb.ListCheckpointsResponse:
        found = await self._audit.latest_checkpoints()
        return pb.ListCheckpointsResponse(checkpoints=[mapping.checkpoint_out(c) for c in found])

    async def ExportAudit(  # noqa: N802
        self, request: pb.ExportAuditRequest, context: Context
    ) -> AsyncIterator[pb.ExportAuditChunk]:
        files = await self._audit.export(request.parent, request.filter)
        for path, data in files.items():
            for start in range(0, max(len(data), 1), CHUNK_BYTES):
                yield pb.ExportAuditChunk(path=path, data=data[start : start + CHUNK_BYTES])

"""The audit sub-client: the trail of who did what, when, where in the log."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from modelreg.client.blocking import Blocking, Facade
from modelreg.client.connection import Connection
from modelreg.client.errors import from_rpc_error
from modelreg.client.uris import parse_uri
from modelreg.gen.audit.v1 import audit_pb2


def audit_filter(
    *,
    model: str = "",
    actor: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    filter: str = "",
) -> tuple[str, str]:
    """(parent, filter) of ListAuditEvents for the usual questions. `model` is `ns/m` (or
    `modelreg://ns/m`); `since` is inclusive, `until` exclusive; `filter` is ANDed on."""
    parent = ""
    terms = []
    if model:
        uri = parse_uri(model)
        parent = uri.parent
        terms.append(f"model = {_quoted(uri.model_name)}")
    if actor:
        terms.append(f"actor = {_quoted(actor)}")
    if action:
        terms.append(f"action = {_quoted(action)}")
    if since is not None:
        terms.append(f"occur_time >= {_quoted(_rfc3339(since))}")
    if until is not None:
        terms.append(f"occur_time < {_quoted(_rfc3339(until))}")
    if filter:
        terms.append(f"({filter})")
    return parent, " AND ".join(terms)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rfc3339(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class AuditClient:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def list_audit_events(
        self,
        namespace: str = "",
        *,
        model: str = "",
        actor: str = "",
        action: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        filter: str = "",
        limit: int | None = None,
        page_size: int = 1000,
    ) -> list[audit_pb2.AuditEvent]:
        """The trail in time order: of namespace `namespace` (`ns`; "" for every namespace)
        or of `model` (`ns/m`), by `actor` or `action`, in [since, until), all pages
        (or the first `limit` events)."""
        parent, text = audit_filter(
            model=model, actor=actor, action=action, since=since, until=until, filter=filter
        )
        if namespace:
            parent = namespace if namespace.startswith("namespaces/") else f"namespaces/{namespace}"
        connection = self._connection
        request = audit_pb2.ListAuditEventsRequest(parent=parent, filter=text, page_size=page_size)
        return await connection.collect(
            connection.audit.ListAuditEvents, request, lambda page: page.audit_events, limit
        )

    async def export_audit(
        self,
        namespace: str = "",
        *,
        model: str = "",
        actor: str = "",
        action: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        filter: str = "",
    ) -> dict[str, bytes]:
        """An export bundle of the trail these arguments select (as list_audit_events'):
        path -> file bytes, for `modelreg.auditlog.bundle.verify_bundle` or a directory."""
        parent, text = audit_filter(
            model=model, actor=actor, action=action, since=since, until=until, filter=filter
        )
        if namespace:
            parent = namespace if namespace.startswith("namespaces/") else f"namespaces/{namespace}"
        connection = self._connection
        stream = connection.audit.ExportAudit(
            audit_pb2.ExportAuditRequest(parent=parent, filter=text), metadata=connection.metadata()
        )
        files: dict[str, bytearray] = {}
        try:
            async for chunk in stream:
                files.setdefault(chunk.path, bytearray()).extend(chunk.data)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        finally:
            stream.cancel()
        return {path: bytes(data) for path, data in files.items()}


class SyncAuditClient(Facade[AuditClient]):
    list_audit_events = Blocking(AuditClient.list_audit_events)
    export_audit = Blocking(AuditClient.export_audit)

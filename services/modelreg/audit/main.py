"""The audit service process.

python -m modelreg.audit serve [--port 50055] [--no-projector]
python -m modelreg.audit project
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from modelreg.audit.adapters.projection import AuditProjection
from modelreg.audit.adapters.reader import PostgresAuditReader
from modelreg.audit.api.servicer import AuditServicer
from modelreg.audit.application.use_cases import Audit
from modelreg.gen.audit.v1 import audit_pb2, audit_pb2_grpc
from modelreg.runtime.host import Runtime, ServiceSpec
from modelreg.runtime.process import run_service

TOPIC = "modelreg.audit.v1"
AUDITED_TOPICS = (
    "modelreg.catalog.v1",
    "modelreg.versioning.v1",
    "modelreg.lineage.v1",
    "modelreg.promotion.v1",
)
"""Every internal topic the trail folds; a new service's topic is one more entry here."""
SCHEMA = "audit"
SERVICE_NAME = audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name


def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
    audit = Audit(PostgresAuditReader(runtime.pool, runtime.schema))
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(audit), server)
    return [SERVICE_NAME]


def spec(schema: str = SCHEMA, topics: Sequence[str] = AUDITED_TOPICS) -> ServiceSpec:
    # One fold per audited topic, all into audit_events: the interceptor waits on
    # consistency tokens for every one of them, so a client reads its own writes here too.
    return ServiceSpec(
        name="audit",
        schema=schema,
        own_topic=TOPIC,
        projections=[(topic, AuditProjection(topic)) for topic in topics],
        register=register,
    )


def main(argv: Sequence[str] | None = None) -> None:
    run_service(name="audit", spec=spec, default_schema=SCHEMA, default_port=50055, argv=argv)


if __name__ == "__main__":
    main()

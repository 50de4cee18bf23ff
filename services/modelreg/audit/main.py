"""The audit service process.

python -m modelreg.audit serve [--port 50055] [--no-projector]
python -m modelreg.audit project

MODELREG_AUDIT_SIGNING_KEY (a PEM Ed25519 private key), MODELREG_AUDIT_RETIRED_KEYS,
MODELREG_AUDIT_CHECKPOINT_EVERY (leaves, 1000) and MODELREG_AUDIT_CHECKPOINT_INTERVAL_S
(10) configure the signed checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import grpc

from modelreg.access.log import with_grants
from modelreg.audit.adapters.checkpoints import CheckpointWriter
from modelreg.audit.adapters.keys import KeyRing
from modelreg.audit.adapters.projection import AuditProjection, OwnTopicProjection
from modelreg.audit.adapters.reader import PostgresAuditReader
from modelreg.audit.api.servicer import AuditServicer
from modelreg.audit.application.use_cases import Audit
from modelreg.audit.domain.entry import SigningKeyInfo
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


def spec(
    schema: str = SCHEMA,
    topics: Sequence[str] = AUDITED_TOPICS,
    *,
    keys: KeyRing | None = None,
    checkpoint_every: int | None = None,
    checkpoint_interval_s: float | None = None,
) -> ServiceSpec:
    """One fold per audited topic, all into audit_events (the interceptor waits on
    consistency tokens for every one of them, so a client reads its own writes here too),
    plus the fold of the own topic's checkpoints. `keys` and the cadence default to the
    environment."""
    ring = keys if keys is not None else KeyRing.from_env()
    every = checkpoint_every or int(os.environ.get("MODELREG_AUDIT_CHECKPOINT_EVERY", "1000"))
    interval_s = checkpoint_interval_s or float(os.environ.get("MODELREG_AUDIT_CHECKPOINT_INTERVAL_S", "10"))

    def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
        reader = PostgresAuditReader(runtime.pool, runtime.schema)
        listed = [SigningKeyInfo(*key) for key in ring.listed()]
        audit = Audit(reader, reader, listed, ring.signer, ring.retired)
        audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(audit), server)
        return [SERVICE_NAME]

    async def write_checkpoints(runtime: Runtime) -> None:
        kafka = runtime.settings.kafka
        writer = CheckpointWriter(
            runtime.pool, runtime.schema, kafka, kafka.topic(TOPIC), ring, every=every, interval_s=interval_s
        )
        await writer.run()

    return ServiceSpec(
        name="audit",
        schema=schema,
        own_topic=TOPIC,
        # Grants on the log count here too (rbac): the audit trail is read under the same table.
        projections=with_grants(
            [
                *[(topic, AuditProjection(topic)) for topic in topics],
                (TOPIC, OwnTopicProjection(TOPIC)),
            ]
        ),
        register=register,
        background=write_checkpoints,
    )


def main(argv: Sequence[str] | None = None) -> None:
    run_service(name="audit", spec=spec, default_schema=SCHEMA, default_port=50055, argv=argv)


if __name__ == "__main__":
    main()

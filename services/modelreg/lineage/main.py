"""The lineage service process.

python -m modelreg.lineage serve [--port 50053] [--no-projector]
python -m modelreg.lineage project
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from modelreg.access.log import with_grants
from modelreg.commands.logged import LoggedCommands
from modelreg.gen.lineage.v1 import lineage_pb2, lineage_pb2_grpc
from modelreg.lineage.adapters import codec
from modelreg.lineage.adapters.caches import PointerCache, VersionCache
from modelreg.lineage.adapters.evaluations import PostgresEvaluationReader
from modelreg.lineage.adapters.projection import LineageProjection
from modelreg.lineage.adapters.reader import (
    PostgresLineageReader,
    PostgresStageDirectory,
    PostgresVersionDirectory,
)
from modelreg.lineage.api.servicer import LineageServicer
from modelreg.lineage.application.evaluations import Evaluations
from modelreg.lineage.application.use_cases import Lineage
from modelreg.runtime.host import Runtime, ServiceSpec
from modelreg.runtime.process import run_service

TOPIC = "modelreg.lineage.v1"
VERSIONING_TOPIC = "modelreg.versioning.v1"
PROMOTION_TOPIC = "modelreg.promotion.v1"
SCHEMA = "lineage"
SERVICE_NAME = lineage_pb2.DESCRIPTOR.services_by_name["LineageService"].full_name


def register(runtime: Runtime, server: grpc.aio.Server) -> Sequence[str]:
    reader = PostgresLineageReader(runtime.pool, runtime.schema)
    lineage = Lineage(
        reader,
        LoggedCommands(
            runtime.executor, load_part=reader.load_record, load_head=reader.load_head, encode=codec.encode
        ),
        PostgresVersionDirectory(runtime.pool, runtime.schema),
        PostgresStageDirectory(runtime.pool, runtime.schema),
    )
    evaluation_reader = PostgresEvaluationReader(runtime.pool, runtime.schema)
    evaluations = Evaluations(
        evaluation_reader,
        LoggedCommands(
            runtime.executor,
            load_part=evaluation_reader.load_health,
            load_head=reader.load_head,
            encode=codec.encode_evaluation,
        ),
        PostgresVersionDirectory(runtime.pool, runtime.schema),
    )
    lineage_pb2_grpc.add_LineageServiceServicer_to_server(LineageServicer(lineage, evaluations), server)
    return [SERVICE_NAME]


def spec(schema: str = SCHEMA) -> ServiceSpec:
    # The own fold plus two reference caches, used only to validate and filter:
    # versions that exist (versioning) and where stages point (promotion). The
    # interceptor waits on consistency tokens for all three topics.
    return ServiceSpec(
        name="lineage",
        schema=schema,
        own_topic=TOPIC,
        projections=with_grants(
            [
                (TOPIC, LineageProjection()),
                (VERSIONING_TOPIC, VersionCache()),
                (PROMOTION_TOPIC, PointerCache()),
            ]
        ),
        register=register,
    )


def main(argv: Sequence[str] | None = None) -> None:
    run_service(name="lineage", spec=spec, default_schema=SCHEMA, default_port=50053, argv=argv)


if __name__ == "__main__":
    main()

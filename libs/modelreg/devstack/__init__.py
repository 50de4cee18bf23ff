"""Real servers on 127.0.0.1 for tests and `modelreg dev`: Kafka (Tansu), PostgreSQL, S3 (moto).

With a Docker engine (and ``MODELREG_USE_TESTCONTAINERS`` not "0") LocalStack uses
testcontainers instead; either way callers see the same attributes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import structlog

from modelreg.devstack.containers import (
    docker_engine_available,
    start_kafka_container,
    start_minio_container,
    start_postgres_container,
)
from modelreg.devstack.kafka import TansuBroker, create_topics, tansu_binary
from modelreg.devstack.lifecycle import Stoppable
from modelreg.devstack.ports import free_port, wait_for_port
from modelreg.devstack.postgres import (
    PG_DSN_ENV,
    PostgresServer,
    create_database,
    drop_database,
)
from modelreg.devstack.s3 import MotoS3Server

__all__ = [
    "LocalStack",
    "MotoS3Server",
    "PostgresServer",
    "TansuBroker",
    "create_database",
    "create_topics",
    "docker_engine_available",
    "drop_database",
    "free_port",
    "tansu_binary",
    "use_testcontainers",
    "wait_for_port",
]

log = structlog.get_logger(__name__)

USE_TESTCONTAINERS_ENV = "MODELREG_USE_TESTCONTAINERS"


def use_testcontainers() -> bool:
    """Containers only when opted in (the default) and a Docker engine actually answers."""
    return os.environ.get(USE_TESTCONTAINERS_ENV) != "0" and docker_engine_available()


class LocalStack(Stoppable):
    """Kafka + PostgreSQL (+ S3 when ``with_s3``), started on construction.

    ``pg_data_dir`` asks for a persistent local cluster, so it always uses the embedded
    server; ``$MODELREG_PG_DSN`` overrides both embedded and container PostgreSQL.
    """

    def __init__(
        self,
        *,
        with_s3: bool = False,
        pg_data_dir: Path | None = None,
        use_containers: bool | None = None,
    ) -> None:
        self.containers = use_testcontainers() if use_containers is None else use_containers
        self.kafka: Any = None
        self.postgres: Any = None
        self.s3: Any = None
        try:
            self.kafka = start_kafka_container() if self.containers else TansuBroker.start()
            if self.containers and pg_data_dir is None and not os.environ.get(PG_DSN_ENV):
                self.postgres = start_postgres_container()
            else:
                self.postgres = PostgresServer.start(pg_data_dir)
            if with_s3:
                self.s3 = start_minio_container() if self.containers else MotoS3Server.start()
        except BaseException:
            self.stop()
            raise
        log.info("local_stack.started", containers=self.containers, s3=with_s3)

    @classmethod
    def start(
        cls,
        *,
        with_s3: bool = False,
        pg_data_dir: Path | None = None,
        use_containers: bool | None = None,
    ) -> LocalStack:
        return cls(with_s3=with_s3, pg_data_dir=pg_data_dir, use_containers=use_containers)

    def server_pids(self) -> dict[str, int]:
        """The process id of the broker ("broker") and of PostgreSQL's postmaster ("postgres"),
        for those running here as local processes (not in a container, not MODELREG_PG_DSN's)."""
        pids: dict[str, int] = {}
        if isinstance(self.kafka, TansuBroker):
            pids["broker"] = self.kafka.process.pid
        if isinstance(self.postgres, PostgresServer) and self.postgres.pid is not None:
            pids["postgres"] = self.postgres.pid
        return pids

    def stop(self) -> None:
        """Stop everything in reverse start order; one failure does not strand the rest.

        Every server's stop() is idempotent, so calling this twice is harmless.
        """
        errors: list[Exception] = []
        for name in ("s3", "postgres", "kafka"):
            server = getattr(self, name)
            if server is None:
                continue
            try:
                server.stop()
            except Exception as exc:  # keep going: the remaining servers must still stop
                log.error("local_stack.stop_failed", server=name, error=repr(exc))
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup("stopping LocalStack failed", errors)

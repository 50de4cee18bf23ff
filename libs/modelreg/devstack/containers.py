"""Docker-backed alternatives (testcontainers) for machines that have a Docker engine.

testcontainers is the optional ``containers`` extra, so it is imported only inside the
functions. Each returned object mirrors the attributes of its local-process counterpart
(TansuBroker, PostgresServer, MotoS3Server) so LocalStack callers need not care which ran.
"""

from __future__ import annotations

import subprocess
from typing import Any

import structlog

from modelreg.devstack.lifecycle import Stoppable

log = structlog.get_logger(__name__)

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
POSTGRES_IMAGE = "postgres:17-alpine"
MINIO_IMAGE = "minio/minio:RELEASE.2024-03-30T09-41-56Z"


def docker_engine_available() -> bool:
    """True only when a Docker engine answers; a docker CLI without a daemon is not enough."""
    try:
        result = subprocess.run(
            ["docker", "info"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=3,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


class _ContainerHandle(Stoppable):
    def __init__(self, container: Any) -> None:
        self.container = container

    def stop(self) -> None:
        if self.container is None:
            return
        container, self.container = self.container, None
        container.stop()


def _start(container: Any) -> Any:
    try:
        container.start()
    except BaseException:
        # A half-started container would otherwise linger until Ryuk (if enabled) reaps it.
        container.stop()
        raise
    return container


class KafkaContainerHandle(_ContainerHandle):
    def __init__(self, container: Any) -> None:
        super().__init__(container)
        self.bootstrap_servers: str = container.get_bootstrap_server()


class PostgresContainerHandle(_ContainerHandle):
    embedded = False

    def __init__(self, container: Any) -> None:
        super().__init__(container)
        self.admin_dsn: str = container.get_connection_url()


class MinioContainerHandle(_ContainerHandle):
    region = "us-east-1"

    def __init__(self, container: Any) -> None:
        super().__init__(container)
        config = container.get_config()
        self.endpoint: str = config["endpoint"]
        self.access_key: str = config["access_key"]
        self.secret_key: str = config["secret_key"]


def start_kafka_container(image: str = KAFKA_IMAGE) -> KafkaContainerHandle:
    from testcontainers.kafka import KafkaContainer

    # KRaft: no ZooKeeper process inside the container, so it boots faster.
    handle = KafkaContainerHandle(_start(KafkaContainer(image).with_kraft()))
    log.info("kafka_container.started", bootstrap_servers=handle.bootstrap_servers)
    return handle


def start_postgres_container(image: str = POSTGRES_IMAGE) -> PostgresContainerHandle:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(
        image, username="postgres", password="postgres", dbname="postgres", driver=None
    )
    handle = PostgresContainerHandle(_start(container))
    log.info("postgres_container.started")
    return handle


def start_minio_container(image: str = MINIO_IMAGE) -> MinioContainerHandle:
    from testcontainers.minio import MinioContainer

    handle = MinioContainerHandle(_start(MinioContainer(image)))
    log.info("minio_container.started", endpoint=handle.endpoint)
    return handle

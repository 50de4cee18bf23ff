"""Fixtures that start real servers: Tansu, PostgreSQL (and moto S3 where asked).

Each test session gets its own database and its own topic prefix; servers
listen on 127.0.0.1 on ports chosen here and are stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import grpc
import pytest

from modelreg.devstack import LocalStack, create_database, drop_database
from modelreg.eventlog.integrity import LogIntegrity
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.runtime.settings import DEFAULT_FETCH_MAX_WAIT_MS, Settings
from tests import logscan
from tests.helpers import outside_pytest_tmp, serving

if TYPE_CHECKING:  # the services are imported where a test first needs one
    from modelreg.gen.catalog.v1.catalog_pb2_grpc import CatalogServiceAsyncStub
    from modelreg.runtime.host import ServiceHost


def pytest_configure(config: pytest.Config) -> None:
    """Every service of the session, in this process or spawned, logs to one file (see logscan)."""
    from modelreg.observability.logging import LOG_FILE_ENV, configure_logging

    path = Path(tempfile.mkdtemp(prefix="modelreg-test-logs-")) / "services.log"
    config.stash[_LOG_FILE] = path
    os.environ[LOG_FILE_ENV] = str(path)
    configure_logging("tests", cache=False)


@pytest.fixture
def pg_tmp_path() -> Iterator[Path]:
    """tmp_path for a test whose PostgreSQL keeps its data in it (see outside_pytest_tmp)."""
    with outside_pytest_tmp("modelreg-test-") as path:
        yield path


@pytest.fixture(scope="session", autouse=True)
def _log_scan_marker() -> None:
    """The line that shows the scan that this session's logging reached its file."""
    import structlog

    structlog.get_logger("tests").info(logscan.SESSION_MARKER)
    logscan.marker_logged()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.stash.get(_LOG_FILE, None)
    if path is None or not logscan.tests_ran():
        return  # nothing ran (--collect-only, or no test selected): nothing to scan
    problems = logscan.check_session_logs(path, logscan.known_secrets())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if problems:
        for problem in problems:
            if reporter is not None:
                reporter.write_line(problem, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None:
        lines = sum(1 for _ in path.open(encoding="utf-8", errors="replace"))
        reporter.write_line(
            f"log scan: {lines} log lines, {len(logscan.known_secrets())} known secrets: no secret found"
        )
        shutil.rmtree(path.parent, ignore_errors=True)


_LOG_FILE = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    with LocalStack.start() as stack:
        yield stack


@pytest.fixture(scope="session")
async def database(local_stack: LocalStack) -> AsyncIterator[str]:
    name = f"modelreg_test_{uuid.uuid4().hex[:12]}"
    dsn = await create_database(local_stack.postgres.admin_dsn, name)
    yield dsn
    await drop_database(local_stack.postgres.admin_dsn, name)


@pytest.fixture(scope="session")
def settings(local_stack: LocalStack, database: str) -> Settings:
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=local_stack.kafka.bootstrap_servers,
            topic_prefix=f"run-{uuid.uuid4().hex[:8]}.",
            # Every service of the suite signs what it appends and verifies what it folds.
            integrity=LogIntegrity.generated("test"),
        ),
        pg_dsn=database,
        token_wait_s=1.0,
        # A run may try another fetch wait, as the services read it (e.g. 25 under CPU load).
        fetch_max_wait_ms=int(os.environ.get("MODELREG_FETCH_MAX_WAIT_MS", DEFAULT_FETCH_MAX_WAIT_MS)),
    )


@pytest.fixture(scope="session")
async def catalog_host(settings: Settings) -> AsyncIterator[ServiceHost]:
    from modelreg.catalog.main import spec

    async with serving(spec(), settings) as host:
        yield host


@pytest.fixture(scope="session")
async def catalog_channel(catalog_host: ServiceHost) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{catalog_host.port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def catalog_stub(catalog_channel: grpc.aio.Channel) -> CatalogServiceAsyncStub:
    from modelreg.gen.catalog.v1 import catalog_pb2_grpc

    # grpc ships no types: the channel is Any, which would pick the stub's sync overload.
    return cast("CatalogServiceAsyncStub", catalog_pb2_grpc.CatalogServiceStub(catalog_channel))

"""Small helpers shared by tests; no fakes of any server live here."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelreg.eventlog import decode
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.projections.replay import read_log
from modelreg.runtime.settings import Settings

if TYPE_CHECKING:  # the services are imported where a test first needs one
    from modelreg.runtime.host import ServiceHost, ServiceSpec


def unique(prefix: str = "m") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def log_envelopes(kafka: KafkaSettings, topic: str) -> list[Envelope]:
    """Every envelope on a topic, read from the broker itself."""
    return [
        decode(record.value)
        for _, records in [batch async for batch in read_log(kafka, topic)]
        for record in records
    ]


async def count_rows(dsn: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    fields = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


def with_own_topics(settings: Settings, name: str) -> Settings:
    """The settings with a topic prefix of their own: a test that puts another service's facts
    on the broker directly must not have that service (on the shared topics) fold them too."""
    return replace(
        settings,
        kafka=replace(settings.kafka, topic_prefix=f"{name}-{uuid.uuid4().hex[:8]}."),
    )


@contextlib.asynccontextmanager
async def serving(spec: ServiceSpec, settings: Settings) -> AsyncIterator[ServiceHost]:
    """A service host on a free port until the block ends."""
    from modelreg.runtime.host import ServiceHost

    host = ServiceHost(spec, settings)
    await host.start(port=0)
    try:
        yield host
    finally:
        await host.stop()


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `values` set until the block ends (hosts read auth and roles at start)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def outside_pytest_tmp(prefix: str) -> Iterator[Path]:
    """A scratch directory for a persistent PostgreSQL data dir (or a `modelreg dev` home that
    holds one), removed afterwards. Not under pytest's tmp_path: run as root, the embedded
    PostgreSQL runs as an unprivileged user, and every pytest session that starts on the machine
    resets /tmp/pytest-of-root to 0700, which cuts a running server off its data directory
    (PANIC: could not open file ".../global/pg_control": Permission denied)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def serving_asgi(app: Any) -> AsyncIterator[str]:
    """`app` served by uvicorn on a port the kernel picks on 127.0.0.1, in this event loop;
    yields its base URL and stops the server when the block ends."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(600):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        assert server.started, "the HTTP server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()

"""Small helpers shared by tests; no fakes of any server live here."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
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


class _CliFork:
    """One tests.cli_fork process: the CLI imported, forking a child per invocation."""

    def __init__(self) -> None:
        # Without COLUMNS and LINES: rich fixes a console's size if they are set when it is made
        # (at import), and then each child's own COLUMNS would not count (pytest sets COLUMNS).
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.cli_fork"],
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        self._pending = b""

    def answer(self, deadline: float | None) -> dict[str, int] | None:
        """The next answer line, or None once `deadline` (time.monotonic) has passed."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._pending:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], wait)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"tests.cli_fork exited ({self.process.wait()}); see its stderr above")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        answer: dict[str, int] = json.loads(line)
        return answer

    def run(self, request: dict[str, Any], timeout: float) -> int | None:
        """The child's exit code, or None if it was killed at `timeout` seconds."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        started = self.answer(None)
        assert started is not None
        done = self.answer(time.monotonic() + timeout)
        if done is not None:
            return done["returncode"]
        os.kill(started["pid"], signal.SIGKILL)  # as subprocess.run does at its timeout
        self.answer(None)
        return None

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


_idle_cli_forks: list[_CliFork] = []
_cli_forks_lock = threading.Lock()


@atexit.register
def _close_cli_forks() -> None:
    with _cli_forks_lock:
        while _idle_cli_forks:
            _idle_cli_forks.pop().close()


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """What `subprocess.run([python, -m, modelreg.cli.main, *args], env=env, capture_output=True,
    text=True, timeout=timeout)` returns, from a process forked off one that has imported the
    CLI already (tests.cli_fork): the same environment (exactly `env`, os.environ if None),
    working directory, output and exit code, without the second of imports per invocation.
    Callers that run it concurrently get a forking process each."""
    with _cli_forks_lock:
        fork = _idle_cli_forks.pop() if _idle_cli_forks else None
    if fork is None:
        fork = _CliFork()
    command = [sys.executable, "-m", "modelreg.cli.main", *args]
    with tempfile.TemporaryDirectory(prefix="modelreg-cli-out-") as scratch:
        out, err = Path(scratch) / "stdout", Path(scratch) / "stderr"
        request = {
            "args": list(args),
            "env": dict(os.environ if env is None else env),
            "cwd": os.getcwd(),
            "stdout": str(out),
            "stderr": str(err),
        }
        try:
            returncode = fork.run(request, timeout)
        except BaseException:
            fork.process.kill()  # mid-request: its answers would be out of step
            raise
        with _cli_forks_lock:
            _idle_cli_forks.append(fork)
        # As text=True reads them: the locale's encoding (UTF-8 here), universal newlines.
        stdout = out.read_text(encoding="utf-8") if out.exists() else ""
        stderr = err.read_text(encoding="utf-8") if err.exists() else ""
    if returncode is None:
        raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(command, returncode, stdout, stderr)


async def run_cli_async(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """run_cli off the event loop, which may be serving the services the CLI talks to."""
    return await asyncio.to_thread(run_cli, *args, env=env, timeout=timeout)

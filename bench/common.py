"""What every benchmark shares: timing and percentiles, the health-check floor, a scratch
database, the services it starts, and the results file with its machine description."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.table import Table

from modelreg.cli.dev import stop_processes, wait_until_serving
from modelreg.devstack import LocalStack, create_database, drop_database
from modelreg.devstack.ports import free_port

OUT = Path(__file__).parent / "out"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "n": len(samples)}


async def timed(calls: int, make_call: Callable[[int], Awaitable[Any]]) -> list[float]:
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        await make_call(i)
        samples.append(time.perf_counter() - started)
    return samples


async def health_floor(channel: grpc.aio.Channel, calls: int) -> dict[str, float]:
    """The percentiles of a health Check: what any call costs before the service does any work."""
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(50):  # warm-up: HTTP/2 connection, the server's first calls
        await health.Check(health_pb2.HealthCheckRequest())
    return percentiles(await timed(calls, lambda i: health.Check(health_pb2.HealthCheckRequest())))


@contextlib.contextmanager
def scratch_database(stack: LocalStack, prefix: str) -> Iterator[str]:
    """The DSN of a new database on the stack's server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    dsn = asyncio.run(create_database(stack.postgres.admin_dsn, name))
    try:
        yield dsn
    finally:
        asyncio.run(drop_database(stack.postgres.admin_dsn, name))


def service_env(stack: LocalStack, dsn: str, prefix: str = "", **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "MODELREG_KAFKA_BOOTSTRAP": stack.kafka.bootstrap_servers,
        "MODELREG_PG_DSN": dsn,
        "MODELREG_TOPIC_PREFIX": prefix,
        "MODELREG_LOG_LEVEL": "WARNING",
        **extra,
    }


@contextlib.contextmanager
def services(names: list[str], env: dict[str, str]) -> Iterator[dict[str, int]]:
    """`modelreg.<name> serve` for each name, on free ports, until the block ends."""
    ports = {name: free_port() for name in names}
    processes = []
    try:
        for name in names:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", f"modelreg.{name}", "serve", "--port", str(ports[name])], env=env
                )
            )
        for name, process in zip(names, processes, strict=True):
            wait_until_serving(ports[name], process)
        yield ports
    finally:
        stop_processes(processes)


def meta(**extra: Any) -> dict[str, Any]:
    """When and where the figures were taken."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "postgres": "embedded" if not os.environ.get("MODELREG_PG_DSN") else "MODELREG_PG_DSN",
    }


def write_results(results: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
    return path


def floor_table(title: str, results: dict[str, Any], extra: tuple[str, str]) -> Table:
    """p50, p99 and p50 over the floor of every measure; `extra` = (column, figure key)."""
    floor = results["floor_health_check"]["p50_ms"]
    table = Table(title=f"{title}: floor (health Check p50) = {floor:.2f} ms")
    column, key = extra
    for name in ("measure", "p50 ms", "p99 ms", "p50 - floor", column):
        table.add_column(name, justify="left" if name == "measure" else "right")
    for name, f in results.items():
        if name in ("meta", "load"):
            continue
        table.add_row(
            name,
            f"{f['p50_ms']:.2f}",
            f"{f['p99_ms']:.2f}",
            f"{f['p50_ms'] - floor:+.2f}",
            str(f.get(key, "")),
        )
    return table

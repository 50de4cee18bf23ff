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
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import psutil
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


class ServicePorts(dict[str, int]):
    """The port of each started service by name; `pids` holds each one's process id."""

    def __init__(self, ports: dict[str, int], pids: dict[str, int]) -> None:
        super().__init__(ports)
        self.pids = pids


@contextlib.contextmanager
def services(names: list[str], env: dict[str, str]) -> Iterator[ServicePorts]:
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
        yield ServicePorts(ports, {name: p.pid for name, p in zip(names, processes, strict=True)})
    finally:
        stop_processes(processes)


def rss_mb(pids: dict[str, int]) -> dict[str, float]:
    """Resident memory of each named process, in MiB."""
    return {name: psutil.Process(pid).memory_info().rss / 2**20 for name, pid in pids.items()}


CpuSample = dict[str, dict[tuple[int, int], float]]
"""CPU seconds (user + system) per group, by (pid, create time) so a reused pid never matches."""


class CpuMeter:
    """CPU seconds spent by every process of the stack, in groups: each service process by
    its name, "broker", "postgres" (the postmaster and its backends) and "bench client"
    (this process alone: the services and servers are its children, and counted apart)."""

    def __init__(self, stack: LocalStack, started: ServicePorts) -> None:
        servers = stack.server_pids()
        # Roots whose descendants count with them; PostgreSQL forks a backend per connection.
        self.groups: dict[str, tuple[int, bool]] = {
            **{name: (pid, False) for name, pid in started.pids.items()},
            **{name: (pid, name == "postgres") for name, pid in servers.items()},
            "bench client": (os.getpid(), False),
        }
        self.services = list(started.pids)

    def sample(self) -> CpuSample:
        trees = tree_cpu_seconds({name: pid for name, (pid, _) in self.groups.items()})
        sample = {
            name: trees[name] if with_children else _root_only(trees[name], pid)
            for name, (pid, with_children) in self.groups.items()
        }
        # This process from the kernel's exact accounting rather than /proc's clock ticks
        # (10 ms): a small run's client spends about that much (the smoke test's 20 creates
        # with 2 clients read as 0 ticks once).
        sample["bench client"] = {key: time.process_time() for key in sample["bench client"]}
        return sample

    def per_write(self, before: CpuSample, after: CpuSample, writes: int) -> dict[str, float]:
        """CPU ms per acknowledged write of each group, of all services and of everything."""
        return {**self._ms_per(before, after, writes), "writes": writes}

    def per_second(self, before: CpuSample, after: CpuSample, seconds: float) -> dict[str, float]:
        """CPU ms per second of each group: with no calls in between, what idling costs."""
        return {**self._ms_per(before, after, seconds), "seconds": seconds}

    def _ms_per(self, before: CpuSample, after: CpuSample, divisor: float) -> dict[str, float]:
        """Only processes present in both samples count: a backend that started or exited in
        between is missing (its share is lost, not guessed), which under-counts PostgreSQL
        slightly if connections churn; the services' pools keep theirs open."""
        spent = {
            name: sum(
                after[name][key] - seconds for key, seconds in before[name].items() if key in after[name]
            )
            for name in self.groups
        }
        ms = {name: seconds * 1000 / divisor for name, seconds in spent.items()}
        ms["services"] = sum(ms[name] for name in self.services)
        ms["total"] = sum(ms[name] for name in self.groups)
        return ms


def process_cpu_seconds(pid: int, with_children: bool) -> dict[tuple[int, int], float]:
    """User + system CPU seconds of `pid` (and of its descendants), by (pid, start time)."""
    tree = tree_cpu_seconds({"root": pid})["root"]
    return tree if with_children else _root_only(tree, pid)


def _root_only(tree: dict[tuple[int, int], float], pid: int) -> dict[tuple[int, int], float]:
    return {key: seconds for key, seconds in tree.items() if key[0] == pid}


def tree_cpu_seconds(roots: Mapping[str, int]) -> dict[str, dict[tuple[int, int], float]]:
    """Per named root pid, user + system CPU seconds of it and its descendants, by (pid,
    start time in clock ticks), from one reading of /proc (Linux).

    For a poller: psutil's children(recursive=True) reads every process's stat once per
    root and call (13 ms with 180 processes on the machine), so bench.replay's poller,
    three roots ten times a second, took a third of a core from the run it measured. Every
    CPU reading of the benches comes from here.
    """
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[tuple[int, int], float, bool]] = {}
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                raw = stat.read()
        except OSError:
            continue  # exited between listing and reading: absent from this sample
        # After "pid (comm) ": state, ppid, ..., utime and stime (fields 14, 15), starttime (22).
        fields = raw[raw.rindex(b")") + 2 :].split()
        pid = int(entry.name)
        seconds = (int(fields[11]) + int(fields[12])) / tick
        stats[pid] = ((pid, int(fields[19])), seconds, fields[17] == b"1")
        children.setdefault(int(fields[1]), []).append(pid)
    trees: dict[str, dict[tuple[int, int], float]] = {}
    for name, root in roots.items():
        tree: dict[tuple[int, int], float] = {}
        pending = [root]
        while pending:
            pid = pending.pop()
            if pid in stats:
                key, seconds, single_threaded = stats[pid]
                tree[key] = _exact_cpu_seconds(pid, seconds) if single_threaded else seconds
            pending.extend(children.get(pid, ()))
        trees[name] = tree
    return trees


def _exact_cpu_seconds(pid: int, ticked: float) -> float:
    """A single-threaded process's CPU time to the nanosecond, from the scheduler's own
    count, else `ticked`. /proc's stat truncates each process to 10 ms ticks, and a small
    run spread over PostgreSQL's pooled backends (a smoke test's 20 creates) can read as 0
    in every one of them. Only single-threaded: schedstat counts one thread, and a
    process's live threads would miss its exited ones (stat counts those too)."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as schedstat:
            return int(schedstat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return ticked


def cpu_table(
    title: str, figures: dict[str, dict[str, float]], idle: dict[str, float] | None = None
) -> Table:
    """One column per measured run (e.g. W2 sequential, W2 with 8 clients) of CPU ms per
    write, and with `idle`, a last column of CPU ms per second with no calls."""
    table = Table(title=title)
    table.add_column("process")
    for run in figures:
        table.add_column(run, justify="right")
    if idle:
        table.add_column(f"idle, ms per second ({idle['seconds']:.0f} s)", justify="right")
    first = next(iter(figures.values()))
    order = [n for n in first if n not in ("services", "total", "writes")]
    for name in [*order, "services", "total"]:
        idle_cell = [f"{idle[name]:.1f}"] if idle else []
        table.add_row(name, *(f"{f[name]:.2f}" for f in figures.values()), *idle_cell)
    table.add_row(
        "acknowledged writes", *(str(f["writes"]) for f in figures.values()), *([""] if idle else [])
    )
    return table


def meta(**extra: Any) -> dict[str, Any]:
    """When and where the figures were taken."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "postgres": "embedded" if not os.environ.get("MODELREG_PG_DSN") else "MODELREG_PG_DSN",
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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

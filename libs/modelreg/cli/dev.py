"""`modelreg dev`: the whole registry on this machine, with nothing but Python.

Starts Tansu, PostgreSQL (embedded, persistent under MODELREG_HOME, unless
MODELREG_PG_DSN names a server) and every service as its own process, prints
the endpoints, and stops everything on Ctrl-C.

Tansu keeps its log in memory, so each start begins with an empty log. Read
models derived from a previous log would then be ahead of the truth, so they
are dropped at start: the registry always equals a fold of the log it runs on.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.table import Table

from modelreg.devstack import PostgresServer, TansuBroker, create_database
from modelreg.devstack.ports import free_port
from modelreg.devstack.postgres import PG_DSN_ENV, dsn_for_database

log = structlog.get_logger(__name__)

DEV_DATABASE = "modelreg_dev"


@dataclass(frozen=True, slots=True)
class DevService:
    name: str
    module: str
    schema: str
    default_port: int


SERVICES = [
    DevService("catalog", "modelreg.catalog", "catalog", 50051),
    DevService("versioning", "modelreg.versioning", "versioning", 50052),
    DevService("lineage", "modelreg.lineage", "lineage", 50053),
    DevService("promotion", "modelreg.promotion", "promotion", 50054),
]


def modelreg_home() -> Path:
    return Path(os.environ.get("MODELREG_HOME", Path.home() / ".modelreg" / "dev"))


async def prepare_database(admin_dsn: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DEV_DATABASE)
    finally:
        await conn.close()
    dsn = (
        dsn_for_database(admin_dsn, DEV_DATABASE)
        if exists
        else await create_database(admin_dsn, DEV_DATABASE)
    )
    conn = await asyncpg.connect(dsn)
    try:
        for service in SERVICES:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{service.schema}" CASCADE')
    finally:
        await conn.close()
    return dsn


def wait_until_serving(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"service on port {port} exited with {process.returncode}")
            try:
                if (
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"service on port {port} did not become healthy in {timeout:g}s")


def stop_processes(processes: list[subprocess.Popen[bytes]], grace_s: float = 10.0) -> None:
    """SIGTERM all at once (they shut down in parallel), then SIGKILL whatever lingers."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_dev(*, home: Path, ports: dict[str, int], console: Console) -> None:
    home.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    tansu = postgres = None
    stop_requested = False

    def request_stop(*_: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = signal.signal(signal.SIGTERM, request_stop)
    try:
        tansu = TansuBroker.start(log_path=home / "tansu.log")
        postgres = PostgresServer.start(None if os.environ.get(PG_DSN_ENV) else home / "postgres")
        dsn = asyncio.run(prepare_database(postgres.admin_dsn))
        # Two demo principals, so that a promotion can be requested by one and
        # approved by another (separation of duties); calls without a token stay open.
        demo_tokens = {"alice": secrets.token_urlsafe(16), "bob": secrets.token_urlsafe(16)}
        env = {
            **os.environ,
            "MODELREG_HOME": str(home),
            "MODELREG_KAFKA_BOOTSTRAP": tansu.bootstrap_servers,
            "MODELREG_PG_DSN": dsn,
            "MODELREG_LOG_FORMAT": os.environ.get("MODELREG_LOG_FORMAT", "json"),
            "MODELREG_AUTH_TOKENS": ",".join(f"{token}={who}" for who, token in demo_tokens.items()),
            "MODELREG_AUTH_ALLOW_ANONYMOUS": "1",
        }
        endpoints = {}
        # All services start at once; each bootstraps its own topics and schema.
        for service in SERVICES:
            port = ports.get(service.name) or service.default_port
            logfile = open(home / f"{service.name}.log", "ab")  # noqa: SIM115 - owned by the child
            process = subprocess.Popen(
                [sys.executable, "-m", service.module, "serve", "--port", str(port)],
                env=env,
                stdout=logfile,
                stderr=logfile,
            )
            processes.append(process)
            endpoints[service.name] = f"127.0.0.1:{port}"
        for process, address in zip(processes, endpoints.values(), strict=True):
            wait_until_serving(int(address.rsplit(":", 1)[1]), process)
        (home / "endpoints.json").write_text(
            json.dumps({**endpoints, "kafka": tansu.bootstrap_servers, "demo_tokens": demo_tokens}, indent=2)
        )

        table = Table(title="modelreg dev: all services are up")
        table.add_column("component")
        table.add_column("endpoint")
        for name, endpoint in endpoints.items():
            table.add_row(name, endpoint)
        table.add_row("kafka (Tansu)", tansu.bootstrap_servers)
        table.add_row("postgres", dsn)
        table.add_row("logs", str(home))
        console.print(table)
        console.print("ready. Press Ctrl-C to stop.", highlight=False)
        sys.stdout.flush()
        while not stop_requested:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a service exited with {process.returncode}; see the logs in {home}")
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        console.print("stopping...")
        stop_processes(processes)
        if tansu is not None:
            tansu.stop()
        if postgres is not None:
            postgres.stop()
        console.print("stopped.")


def free_ports() -> dict[str, int]:
    return {service.name: free_port() for service in SERVICES}

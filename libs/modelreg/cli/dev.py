"""`modelreg dev`: the whole registry on this machine, with nothing but Python.

Starts Tansu, PostgreSQL (embedded, persistent under MODELREG_HOME, unless
MODELREG_PG_DSN names a server), every service and the archiver as processes of
their own, prints the endpoints, restarts a service that crashes, and stops
everything on Ctrl-C.

Tansu keeps its log in memory, so the archiver copies it, as it grows, to
$MODELREG_HOME/archive, and each start restores that archive into the fresh broker
with identical offsets. The read models are kept: their checkpoints still point
into the same log. A schema whose checkpoints are ahead of the restored log (its
events never reached the archive, e.g. after a kill -9) is dropped instead, so its
service folds it again from the log: the registry always equals a fold of the log
it runs on.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.table import Table

from modelreg.archive import CorruptArchive, load_manifest
from modelreg.archive.fs import FilesystemSegmentStore
from modelreg.archive.kafka import RestoreRefused
from modelreg.archive.restore import RestoreReport, restore
from modelreg.auditlog.checkpoint import Signer
from modelreg.devstack import PostgresServer, TansuBroker, create_database
from modelreg.devstack.ports import free_port
from modelreg.devstack.postgres import PG_DSN_ENV, dsn_for_database
from modelreg.eventlog.integrity import ensure_local_keys

log = structlog.get_logger(__name__)

DEV_DATABASE = "modelreg_dev"
DEV_ROLES = "anonymous=viewer@*,alice=admin@*,bob=approver@*"
"""`make dev`'s grants: anonymous callers only read; alice (the demo's requester, who sets
its policy) is admin; bob (who approves) is approver."""


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
    DevService("audit", "modelreg.audit", "audit", 50055),
    DevService("events", "modelreg.events", "events", 50056),
]


GATEWAY_DEFAULT_PORT = 5000
"""The HTTP gateway's port (MLflow's registry REST API and the web UI): MLflow's own default."""


def modelreg_home() -> Path:
    return Path(os.environ.get("MODELREG_HOME", Path.home() / ".modelreg" / "dev"))


class DevStartFailed(RuntimeError):
    """A start that cannot go on without losing or inventing data; the message says what to do."""


async def prepare_database(admin_dsn: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DEV_DATABASE)
    finally:
        await conn.close()
    return (
        dsn_for_database(admin_dsn, DEV_DATABASE)
        if exists
        else await create_database(admin_dsn, DEV_DATABASE)
    )


def audit_signing_key(home: Path) -> Path:
    """The audit service's checkpoint signing key under `home`, made on first start; its
    public key is beside it (`.pem.pub`), for `modelreg audit verify --public-key`."""
    path = home / "audit-signing-key.pem"
    if not path.exists():
        Signer.generate().save(path)
    return path


def archive_dir(home: Path) -> Path:
    return home / "archive"


async def restore_archive(home: Path, bootstrap_servers: str) -> RestoreReport | None:
    """Restores the archived log into the fresh broker; None when there is no archive yet."""
    store = FilesystemSegmentStore(archive_dir(home))
    if not (await load_manifest(store)).topics:
        return None
    try:
        report = await restore(store, bootstrap_servers)
    except (CorruptArchive, RestoreRefused) as error:
        raise DevStartFailed(
            f"the archived log in {archive_dir(home)} cannot be restored: {error}. "
            "Check it with `modelreg ops verify-archive --from file://...`; move it away to start empty."
        ) from None
    if problems := report.mismatches():
        raise DevStartFailed(f"the restored log differs from the archive: {'; '.join(problems)}")
    return report


async def schemas_ahead_of_the_log(dsn: str, ends: Mapping[str, Mapping[int, int]]) -> dict[str, str]:
    """Service schema -> why, for each schema that has folded offsets the restored log lacks."""
    conn = await asyncpg.connect(dsn)
    try:
        ahead = {}
        for service in SERVICES:
            table = await conn.fetchval("SELECT to_regclass($1)", f'"{service.schema}".checkpoints')
            if table is None:
                continue
            for row in await conn.fetch(
                f'SELECT topic, partition, next_offset FROM "{service.schema}".checkpoints'
            ):
                end = ends.get(row["topic"], {}).get(row["partition"], 0)
                if row["next_offset"] > end:
                    where = f"{row['topic']}[{row['partition']}]"
                    ahead[service.schema] = f"{where} folded to {row['next_offset']}, the log ends at {end}"
                    break
        return ahead
    finally:
        await conn.close()


async def drop_schemas(dsn: str, schemas: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def prepare_log_and_read_models(home: Path, dsn: str, bootstrap_servers: str, console: Console) -> None:
    report = await restore_archive(home, bootstrap_servers)
    ends: dict[str, dict[int, int]] = {}
    if report is not None:
        ends = {
            topic: {p: summary.last_offset + 1 for p, summary in partitions.items()}
            for topic, partitions in report.restored.items()
        }
        console.print(
            f"restored {report.records} archived records into the broker "
            f"({report.per_second:,.0f} records/s); offsets, records and chain heads verified",
            highlight=False,
        )
    ahead = await schemas_ahead_of_the_log(dsn, ends)
    for schema, why in ahead.items():
        console.print(
            f"[yellow]{schema}: the read models are ahead of the archived log ({why}); "
            "rebuilding them from the log[/]",
            highlight=False,
        )
    await drop_schemas(dsn, list(ahead))


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


def ui_session_key(home: Path) -> Path:
    """The key that seals the web UI's session cookies, made once per registry home."""
    path = home / "ui-session.key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path


def wait_until_http_serving(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until the gateway's /health answers 200."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway on port {port} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"gateway on port {port} did not answer /health in {timeout:g}s")


def stop_processes(processes: list[subprocess.Popen[bytes]], grace_s: float = 10.0) -> None:
    """SIGTERM all at once (they shut down in parallel), then SIGKILL whatever lingers."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


RESTART_DELAY_S = 1.0


@dataclass(slots=True)
class Supervised:
    """A child process that is started again, with a log line, whenever it dies unasked."""

    name: str
    argv: list[str]
    env: dict[str, str]
    logfile: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    died_at: float | None = None
    started_at: float = field(default=0.0)

    def start(self) -> subprocess.Popen[bytes]:
        from modelreg.devstack.kafka import die_with_parent

        with open(self.logfile, "ab") as log_file:
            # Its own session: a terminal's Ctrl-C reaches only `modelreg dev`, which then
            # stops the children in order (services, then the archiver drains, then the broker).
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        self.started_at = time.monotonic()
        self.died_at = None
        return self.process

    def check(self, console: Console) -> None:
        """Restarts the process if it has died (after a short delay, so a crash loop stays slow)."""
        if self.process is None or self.process.poll() is None:
            return
        now = time.monotonic()
        if self.died_at is None:
            self.died_at = now
            console.print(
                f"[yellow]{self.name} exited with code {self.process.returncode}; restarting it "
                f"(log: {self.logfile})[/]",
                highlight=False,
            )
            log.warning("dev.service_died", service=self.name, code=self.process.returncode)
        elif now - self.died_at >= RESTART_DELAY_S:
            self.restarts += 1
            self.start()
            console.print(f"{self.name} restarted (restart #{self.restarts})", highlight=False)
            log.info("dev.service_restarted", service=self.name, restarts=self.restarts)


ARCHIVE_POLL_MS = 20
"""The archiver's poll interval in `make dev`: a kill -9 of the whole stack can lose what
the broker acknowledged in about the last poll plus one fsync (README: the loss window)."""


def run_dev(*, home: Path, ports: Mapping[str, int], console: Console) -> None:
    home = home.absolute()
    home.mkdir(parents=True, exist_ok=True)
    services: list[Supervised] = []
    archiver: Supervised | None = None
    tansu = postgres = None
    stop_requested = False

    def request_stop(*_: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        tansu = TansuBroker.start(log_path=home / "tansu.log")
        postgres = PostgresServer.start(None if os.environ.get(PG_DSN_ENV) else home / "postgres")
        dsn = asyncio.run(prepare_database(postgres.admin_dsn))
        asyncio.run(prepare_log_and_read_models(home, dsn, tansu.bootstrap_servers, console))
        # Two demo principals, so that a promotion can be requested by one and
        # approved by another (separation of duties); calls without a token are
        # anonymous viewers: they read everything and change nothing.
        demo_tokens = {"alice": secrets.token_urlsafe(16), "bob": secrets.token_urlsafe(16)}
        env = {
            **os.environ,
            "MODELREG_HOME": str(home),
            "MODELREG_KAFKA_BOOTSTRAP": tansu.bootstrap_servers,
            "MODELREG_PG_DSN": dsn,
            "MODELREG_LOG_FORMAT": os.environ.get("MODELREG_LOG_FORMAT", "json"),
            "MODELREG_AUTH_TOKENS": ",".join(f"{token}={who}" for who, token in demo_tokens.items()),
            "MODELREG_AUTH_ALLOW_ANONYMOUS": "1",
            "MODELREG_ROLES": os.environ.get("MODELREG_ROLES") or DEV_ROLES,
            "MODELREG_AUDIT_SIGNING_KEY": os.environ.get("MODELREG_AUDIT_SIGNING_KEY")
            or str(audit_signing_key(home)),
            # Every envelope signed, every fold verifying (a key kept under the home).
            **ensure_local_keys(home / "keys"),
        }
        archiver = Supervised(
            "archiver",
            [
                sys.executable,
                "-m",
                "modelreg.cli.main",
                "ops",
                "archive",
                "--follow",
                "--to",
                archive_dir(home).as_uri(),
                "--poll-ms",
                str(ARCHIVE_POLL_MS),
            ],
            env,
            home / "archiver.log",
        )
        archiver.start()
        endpoints = {}
        # All services start at once; each bootstraps its own topics and schema.
        for service in SERVICES:
            port = ports.get(service.name) or service.default_port
            supervised = Supervised(
                service.name,
                [sys.executable, "-m", service.module, "serve", "--port", str(port)],
                env,
                home / f"{service.name}.log",
            )
            supervised.start()
            services.append(supervised)
            endpoints[service.name] = f"127.0.0.1:{port}"
        for supervised, address in zip(services, endpoints.values(), strict=True):
            assert supervised.process is not None
            while not stop_requested:
                try:
                    wait_until_serving(int(address.rsplit(":", 1)[1]), supervised.process)
                    break
                except RuntimeError:
                    supervised.check(console)
                    time.sleep(RESTART_DELAY_S)
                    supervised.check(console)
                    assert supervised.process is not None
        # The HTTP gateway: stateless, it finds the services by their addresses.
        gateway_port = ports.get("gateway") or GATEWAY_DEFAULT_PORT
        gateway = Supervised(
            "gateway",
            [sys.executable, "-m", "modelreg.gateway", "serve", "--port", str(gateway_port)],
            {
                **env,
                **{f"MODELREG_{name.upper()}_ADDR": address for name, address in endpoints.items()},
                # The web UI's sign-ins outlive a restart of the gateway.
                "MODELREG_UI_SESSION_KEY_FILE": str(ui_session_key(home)),
                # On a laptop the gateway may read model directories of the developer's own
                # (create-model-version `source`): their home and the temporary directory.
                "MODELREG_GATEWAY_SOURCE_ROOTS": os.environ.get("MODELREG_GATEWAY_SOURCE_ROOTS")
                or f"{Path.home()}:{tempfile.gettempdir()}",
            },
            home / "gateway.log",
        )
        gateway.start()
        services.append(gateway)
        while not stop_requested:
            assert gateway.process is not None
            try:
                wait_until_http_serving(gateway_port, gateway.process)
                break
            except RuntimeError:
                gateway.check(console)
                time.sleep(RESTART_DELAY_S)
                gateway.check(console)
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        (home / "endpoints.json").write_text(
            json.dumps(
                {
                    **endpoints,
                    "gateway": gateway_url,
                    "kafka": tansu.bootstrap_servers,
                    "demo_tokens": demo_tokens,
                },
                indent=2,
            )
        )

        table = Table(title="modelreg dev: all services are up")
        table.add_column("component")
        table.add_column("endpoint")
        for name, endpoint in endpoints.items():
            table.add_row(name, endpoint)
        table.add_row("gateway (MLflow REST API, /docs)", gateway_url)
        table.add_row("web UI", f"{gateway_url}/")
        table.add_row("kafka (Tansu)", tansu.bootstrap_servers)
        table.add_row("postgres", dsn)
        table.add_row("archive", str(archive_dir(home)))
        table.add_row("logs", str(home))
        console.print(table)
        if not stop_requested:
            console.print(
                f"web UI: {gateway_url}/ (sign in with a demo token: demo_tokens in "
                f"{home / 'endpoints.json'})",
                highlight=False,
            )
            console.print("ready. Press Ctrl-C to stop.", highlight=False)
        sys.stdout.flush()
        while not stop_requested:
            for supervised in [*services, archiver]:
                supervised.check(console)
            time.sleep(0.2)
    except DevStartFailed as failure:
        console.print(f"[red]cannot start:[/] {failure}", highlight=False)
        raise SystemExit(1) from None
    finally:
        # A second Ctrl-C must not cut the orderly stop short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        console.print("stopping...")
        stopping = time.monotonic()
        stop_processes([s.process for s in services if s.process is not None])
        log.info("dev.services_stopped", seconds=round(time.monotonic() - stopping, 2))
        if archiver is not None and archiver.process is not None:
            # The services are gone, so the log is final: the archiver drains it to the end.
            stopping = time.monotonic()
            stop_processes([archiver.process], grace_s=60.0)
            log.info("dev.archive_drained", seconds=round(time.monotonic() - stopping, 2))
        if tansu is not None:
            tansu.stop()
        if postgres is not None:
            postgres.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        console.print("stopped.")


def free_ports() -> dict[str, int]:
    return {**{service.name: free_port() for service in SERVICES}, "gateway": free_port()}

"""What the fault suite and `make soak` share: a private stack of real processes, a randomized
workload through the SDK that keeps a ledger of what was acknowledged, and the invariants.

The stack is private (its own Tansu and its own embedded PostgreSQL), because the faults
restart and stop them; the machine's shared PostgreSQL is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelreg.client import AsyncRegistry, Endpoints, RegistryError
from modelreg.client.errors import DeadlineExceeded, Unavailable
from modelreg.devstack import PostgresServer, TansuBroker, create_database
from modelreg.devstack.ports import free_port
from modelreg.eventlog import decode
from modelreg.eventlog.envelope import UndecodableRecord
from modelreg.eventlog.integrity import LogIntegrity, ensure_local_keys
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.gen.lineage.v1 import lineage_pb2
from modelreg.projections.batch import ProjectionHandler, Record
from modelreg.projections.replay import BOOKKEEPING_TABLES, digest, read_log, rebuild_all
from modelreg.runtime.host import ServiceSpec

T = TypeVar("T")

SERVICES = ("catalog", "versioning", "lineage", "promotion")
CATALOG_PROJECTOR = "catalog-projector"
"""The catalog's projector runs as a process of its own, so a fault can hit it alone."""


def service_spec(name: str) -> ServiceSpec:
    from modelreg.catalog.main import spec as catalog
    from modelreg.lineage.main import spec as lineage
    from modelreg.promotion.main import spec as promotion
    from modelreg.versioning.main import spec as versioning

    return {"catalog": catalog, "versioning": versioning, "lineage": lineage, "promotion": promotion}[name]()


class Stack:
    """Tansu, PostgreSQL and the four services (the catalog's projector apart), as processes."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.broker = TansuBroker.start(log_path=home / "tansu.log")
        self.postgres = PostgresServer.start(private=True)
        self.dsn = asyncio.run(create_database(self.postgres.admin_dsn, "faults"))
        # The services sign what they append and every fold verifies, the clean replay too.
        keys = ensure_local_keys(home / "keys", key_id="faults")
        self.kafka = KafkaSettings(self.broker.bootstrap_servers, integrity=LogIntegrity.from_env(keys))
        self.ports = {name: free_port() for name in SERVICES}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            **os.environ,
            "MODELREG_HOME": str(home),
            "MODELREG_ARTIFACTS": (home / "artifacts").as_uri(),
            "MODELREG_KAFKA_BOOTSTRAP": self.broker.bootstrap_servers,
            "MODELREG_TOPIC_PREFIX": "",
            "MODELREG_PG_DSN": self.dsn,
            "MODELREG_LOG_LEVEL": "WARNING",
            "MODELREG_AUTH": "none",
            **keys,
        }
        for name in [*SERVICES, CATALOG_PROJECTOR]:
            self.start(name)
        for name in SERVICES:
            self.wait_serving(name)

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(**{name: f"127.0.0.1:{port}" for name, port in self.ports.items()})

    def command(self, name: str) -> list[str]:
        if name == CATALOG_PROJECTOR:
            return [sys.executable, "-m", "modelreg.catalog", "project"]
        extra = ["--no-projector"] if name == "catalog" else []
        return [sys.executable, "-m", f"modelreg.{name}", "serve", "--port", str(self.ports[name]), *extra]

    def start(self, name: str) -> None:
        logfile = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes[name] = subprocess.Popen(
            self.command(name), env=self.env, stdout=logfile, stderr=logfile
        )

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)
        if name in SERVICES:
            self.wait_serving(name)

    def wait_serving(self, name: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(f"127.0.0.1:{self.ports[name]}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} exited; see {self.home / name}.log")
                with contextlib.suppress(grpc.RpcError):
                    status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return
                time.sleep(0.2)
        raise TimeoutError(f"{name} did not become healthy in {timeout:g}s")

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items() if p.poll() is None}

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.postgres.stop()
        self.broker.stop()


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    # MODELREG_FAULTS_KEEP=1 keeps the services' logs (under /tmp) for a post-mortem.
    home = Path(tempfile.mkdtemp(prefix="modelreg-faults-"))
    try:
        stack = Stack(home)
        try:
            yield stack
        finally:
            stack.stop()
    finally:
        if os.environ.get("MODELREG_FAULTS_KEEP") == "1":
            print(f"fault suite logs kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


@dataclass
class Ledger:
    """What the workload did: the request ids acknowledged and what each created."""

    operations: int = 0
    retries: int = 0
    acknowledged: dict[str, str] = field(default_factory=dict)
    """request_id -> the kind of command."""
    versions: dict[str, int] = field(default_factory=dict)
    """model uri -> versions acknowledged."""
    lineage: dict[str, int] = field(default_factory=dict)
    """version uri -> lineage records acknowledged."""
    aliases: dict[str, int] = field(default_factory=dict)
    """model uri -> the version its alias was last acknowledged on."""
    stale_reads: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_messages: list[str] = field(default_factory=list)
    """The first few failed commands' messages, for the report."""
    latencies: list[tuple[float, str, float]] = field(default_factory=list)
    """(wall time, kind, seconds) per acknowledged command."""


RETRIED = (Unavailable, DeadlineExceeded)


class Workload:
    """Workers that each own their models (so each worker's reads are deterministic) and pick
    at random: register a model, create a version, record lineage, move an alias. Every write
    is followed by a read with the client's token, on another service where there is one."""

    def __init__(
        self, endpoints: Endpoints, ledger: Ledger, *, seed: int = 13, give_up_s: float = 90.0
    ) -> None:
        self._endpoints = endpoints
        self.ledger = ledger
        self._random = random.Random(seed)
        self._give_up_s = give_up_s
        self._namespace = f"faults{uuid.uuid4().hex[:6]}"

    async def run(self, stop: asyncio.Event, *, workers: int = 4, pause_s: float = 0.0) -> None:
        await asyncio.gather(*(self._worker(i, stop, pause_s) for i in range(workers)))

    async def _worker(self, index: int, stop: asyncio.Event, pause_s: float) -> None:
        rng = random.Random(self._random.random())
        models: list[str] = []
        async with AsyncRegistry(self._endpoints, retries=2, timeout=20) as registry:
            while not stop.is_set():
                kind = (
                    "register"
                    if not models
                    else rng.choice(["register", "version", "version", "lineage", "alias"])
                )
                model = (
                    f"{self._namespace}/w{index}m{len(models)}" if kind == "register" else rng.choice(models)
                )
                try:
                    await self._one(registry, kind, model)
                except RegistryError as error:
                    self.ledger.errors[f"{kind}:{type(error).__name__}"] += 1
                    if len(self.ledger.error_messages) < 10:
                        self.ledger.error_messages.append(f"{kind} {model}: {error}")
                else:
                    if kind == "register":
                        models.append(model)
                if pause_s:
                    await asyncio.sleep(pause_s * rng.uniform(0.5, 1.5))

    async def _one(self, registry: AsyncRegistry, kind: str, model: str) -> None:
        ledger = self.ledger
        request_id = str(uuid.uuid4())
        ledger.operations += 1
        started = time.perf_counter()
        if kind == "register":
            await self._retrying(lambda: registry.catalog.register_model(model, request_id=request_id))
            read = await registry.catalog.get_model(model)
            if not read.name.endswith(model.split("/", 1)[1]):
                ledger.stale_reads.append(f"catalog {model}")
            ledger.versions[model] = 0
        elif kind == "version":
            version = await self._retrying(
                lambda: registry.versioning.create_version(model, request_id=request_id)
            )
            ledger.acknowledged[f"{request_id}/finalize"] = "finalize"
            ledger.versions[model] += 1
            number = int(version.name.rsplit("/", 1)[1])
            if number != ledger.versions[model]:
                ledger.stale_reads.append(f"version {version.name}: expected number {ledger.versions[model]}")
            # Lineage takes the catalog's and versioning's facts through its caches: the token.
            await registry.lineage.list_lineage_records(f"{model}/{number}")
        elif kind == "lineage":
            if not ledger.versions[model]:
                return
            uri = f"{model}/{ledger.versions[model]}"
            record = lineage_pb2.LineageRecord(
                datasets=[lineage_pb2.Dataset(uri=f"s3://data/{request_id}", digest="sha256:" + "0" * 64)]
            )
            await self._retrying(lambda: registry.lineage.record_lineage(uri, record, request_id=request_id))
            ledger.lineage[uri] = ledger.lineage.get(uri, 0) + 1
            if len(await registry.lineage.list_lineage_records(uri)) != ledger.lineage[uri]:
                ledger.stale_reads.append(f"lineage {uri}")
        else:
            number = ledger.versions[model]
            if not number or ledger.aliases.get(model) == number:
                return  # a move to where the alias already is changes nothing: FAILED_PRECONDITION
            await self._retrying(
                lambda: registry.promotion.request_promotion(
                    model, {"champion": number}, request_id=request_id
                )
            )
            ledger.aliases[model] = number
            if (await registry.promotion.pointers(model)).aliases.get("champion") != number:
                ledger.stale_reads.append(f"alias {model}")
        ledger.acknowledged[request_id] = kind
        ledger.latencies.append((time.time(), kind, time.perf_counter() - started))

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """The SDK retries a few times itself; through a restart the workload keeps retrying
        the same request (same request_id, captured by `call`) until the service is back."""
        deadline = time.monotonic() + self._give_up_s
        while True:
            try:
                return await call()
            except RETRIED:
                if time.monotonic() > deadline:
                    raise
                self.ledger.retries += 1
                await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def workload_running(
    endpoints: Endpoints, ledger: Ledger, *, workers: int = 4, pause_s: float = 0.0
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(Workload(endpoints, ledger).run(stop, workers=workers, pause_s=pause_s))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 180)


async def wait_for_load(ledger: Ledger, operations: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    target = ledger.operations + operations
    while ledger.operations < target:
        assert time.monotonic() < deadline, f"the workload did only {ledger.operations} operations"
        await asyncio.sleep(0.05)


# The invariants --------------------------------------------------------------------------


async def topics(kafka: KafkaSettings) -> list[str]:
    return sorted({kafka.topic(t) for name in SERVICES for t, _ in service_spec(name).projections})


async def read_topic(kafka: KafkaSettings, topic: str) -> dict[int, list[Record]]:
    """Every record of `topic`, read to the end a fetch reports (never end_offsets())."""
    records: dict[int, list[Record]] = {}
    async for partition, batch in read_log(kafka, topic):
        records.setdefault(partition, []).extend(batch)
    return records


async def log_ends(kafka: KafkaSettings) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the offset after its last record, read with a consumer."""
    ends = {}
    for topic in await topics(kafka):
        for partition, records in (await read_topic(kafka, topic)).items():
            ends[(topic, partition)] = records[-1].offset + 1
    return ends


async def wait_caught_up(stack: Stack, timeout: float = 180.0) -> None:
    """Until every schema's checkpoint of every topic it folds is at the log's end."""
    deadline = time.monotonic() + timeout
    ends = await log_ends(stack.kafka)
    conn = await asyncpg.connect(stack.dsn)
    try:
        while True:
            behind = []
            for name in SERVICES:
                spec = service_spec(name)
                folded = {stack.kafka.topic(t) for t, _ in spec.projections}
                rows = await conn.fetch(
                    f'SELECT topic, partition, next_offset FROM "{spec.schema}".checkpoints'
                )
                at = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
                behind += [
                    f"{spec.schema} {topic}[{partition}] at {at.get((topic, partition), 0)} of {end}"
                    for (topic, partition), end in ends.items()
                    if topic in folded and at.get((topic, partition), 0) < end
                ]
            if not behind:
                return
            assert time.monotonic() < deadline, f"projections never caught up: {behind}"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


@dataclass(frozen=True)
class Verdict:
    lost: list[str]
    duplicated: list[str]
    digest_mismatches: list[str]

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.digest_mismatches)


async def check(stack: Stack, ledger: Ledger) -> Verdict:
    """Every acknowledged command in the log and accepted exactly once; read models equal to
    a clean replay; and no command with two effects in the read models."""
    await wait_caught_up(stack)
    in_log: Counter[str] = Counter()
    for topic in await topics(stack.kafka):
        for records in (await read_topic(stack.kafka, topic)).values():
            for record in records:
                with contextlib.suppress(UndecodableRecord):
                    in_log[decode(record.value).request_id] += 1
    conn = await asyncpg.connect(stack.dsn)
    try:
        accepted: Counter[str] = Counter()
        for name in SERVICES:
            spec = service_spec(name)
            # A service's own topic only: its reference caches judge other services' events again.
            for row in await conn.fetch(
                f'SELECT request_id, count(*) AS n FROM "{spec.schema}".event_outcomes'
                " WHERE verdict = 'accepted' AND request_id <> '' AND topic = $1 GROUP BY request_id",
                stack.kafka.topic(spec.own_topic),
            ):
                accepted[row["request_id"]] += row["n"]
        lost = [
            f"{kind} {rid}"
            for rid, kind in ledger.acknowledged.items()
            if not in_log[rid] or not accepted[rid]
        ]
        duplicated = [f"{rid} accepted {n} times" for rid, n in accepted.items() if n > 1]
        duplicated += await _double_effects(conn, ledger)
        mismatches = []
        for name in SERVICES:
            spec = service_spec(name)
            mismatches += await _replay_mismatch(stack, conn, spec)
        return Verdict(lost, duplicated, mismatches)
    finally:
        await conn.close()


async def _double_effects(conn: asyncpg.Connection, ledger: Ledger) -> list[str]:
    """Read-model counts against the acknowledged commands: a retry applied twice shows here."""
    found = []
    rows = await conn.fetch("SELECT model, count(*) AS n FROM versioning.model_versions GROUP BY model")
    versions = {row["model"]: row["n"] for row in rows}
    for model, n in ledger.versions.items():
        ns, name = model.split("/")
        if versions.get(f"namespaces/{ns}/models/{name}", 0) != n:
            found.append(
                f"{model}: {versions.get(f'namespaces/{ns}/models/{name}', 0)} versions, {n} acknowledged"
            )
    return found


async def _replay_mismatch(stack: Stack, conn: asyncpg.Connection, spec: ServiceSpec) -> list[str]:
    routes: dict[str, ProjectionHandler] = {stack.kafka.topic(t): h for t, h in spec.projections}
    shadow = f"{spec.schema}_replay"
    pool = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=4)
    try:
        await rebuild_all(pool, schema=shadow, routes=routes, kafka=stack.kafka)
    finally:
        await pool.close()
    tables = [*dict.fromkeys(t for h in routes.values() for t in h.read_model_tables), *BOOKKEEPING_TABLES]
    try:
        live, replayed = await digest(conn, spec.schema, tables), await digest(conn, shadow, tables)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{shadow}" CASCADE')
    if live == replayed:
        return []
    differ = [a.split(":")[0] for a, b in zip(live.split(";"), replayed.split(";"), strict=True) if a != b]
    return [f"{spec.schema}: {', '.join(differ)} differ from a clean replay"]


def summary(ledger: Ledger, faults: int, verdict: Verdict, *, stale_reads: int, errors: Counter[str]) -> str:
    return (
        f"fault suite: operations={ledger.operations} acknowledged={len(ledger.acknowledged)} faults={faults}"
        f" retries={ledger.retries} lost={len(verdict.lost)} duplicated={len(verdict.duplicated)}"
        f" stale={stale_reads} failed={sum(errors.values())}"
        f" replay_mismatches={len(verdict.digest_mismatches)}"
    )

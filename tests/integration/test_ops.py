"""`modelreg ops replay` and `modelreg ops status` against all five real services.

The stack here has a database and a topic prefix of its own, so a swap, a
tampered row or a stopped projector touches no other test's services.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from modelreg.client import AsyncRegistry, Endpoints, InvalidArgument, NotFound
from modelreg.devstack import LocalStack, create_database, drop_database
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.gen.lineage.v1 import lineage_pb2, lineage_pb2_grpc
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.projections.replay import digest
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.helpers import run_cli_async
from tests.integration.promotion.conftest import promotion_env

TOKEN = "t-alice"  # an editor in promotion_env()


@dataclass
class Stack:
    settings: Settings
    hosts: dict[str, ServiceHost]

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(**{name: f"127.0.0.1:{host.port}" for name, host in self.hosts.items()})

    def registry(self) -> AsyncRegistry:
        return AsyncRegistry(self.endpoints, bearer_token=TOKEN, retries=6)


@pytest.fixture(scope="module")
async def stack(
    local_stack: LocalStack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    from modelreg.audit.main import spec as audit
    from modelreg.catalog.main import spec as catalog
    from modelreg.lineage.main import spec as lineage
    from modelreg.promotion.main import spec as promotion
    from modelreg.versioning.main import spec as versioning

    name = f"modelreg_ops_{uuid.uuid4().hex[:10]}"
    dsn = await create_database(local_stack.postgres.admin_dsn, name)
    own = replace(
        settings,
        pg_dsn=dsn,
        kafka=KafkaSettings(settings.kafka.bootstrap_servers, f"ops-{uuid.uuid4().hex[:8]}."),
        token_wait_s=5.0,
    )
    saved = os.environ.get("MODELREG_ARTIFACTS")
    os.environ["MODELREG_ARTIFACTS"] = tmp_path_factory.mktemp("artifacts").absolute().as_uri()
    hosts: dict[str, ServiceHost] = {}
    try:
        with promotion_env():
            for service, spec in (
                ("catalog", catalog),
                ("versioning", versioning),
                ("lineage", lineage),
                ("promotion", promotion),
                ("audit", audit),
            ):
                hosts[service] = ServiceHost(spec(), own)
                await hosts[service].start(port=0)
        yield Stack(own, hosts)
    finally:
        for host in hosts.values():
            await host.stop()
        if saved is None:
            os.environ.pop("MODELREG_ARTIFACTS", None)
        else:
            os.environ["MODELREG_ARTIFACTS"] = saved
        await drop_database(local_stack.postgres.admin_dsn, name)


async def ops(stack: Stack, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Runs `modelreg ops ...` in a subprocess, off the event loop that serves the stack."""
    env = {
        **os.environ,
        "MODELREG_PG_DSN": stack.settings.pg_dsn,
        "MODELREG_KAFKA_BOOTSTRAP": stack.settings.kafka.bootstrap_servers,
        "MODELREG_TOPIC_PREFIX": stack.settings.kafka.topic_prefix,
        "COLUMNS": "200",
    }
    return await run_cli_async("ops", *args, env=env, timeout=timeout)


def lineage_record(seed: int) -> lineage_pb2.LineageRecord:
    return lineage_pb2.LineageRecord(
        datasets=[
            lineage_pb2.Dataset(
                uri=f"s3://data/train-{seed}.parquet",
                digest=f"sha256:{seed:064x}",
                role=lineage_pb2.DATASET_ROLE_TRAIN,
            )
        ],
        code=[lineage_pb2.CodeRef(repo="https://git.example/ml", commit=f"{seed:040x}", path="train.py")],
    )


async def workload(stack: Stack, rng: random.Random, namespace: str, models: int) -> list[str]:
    """Models with a random number of versions, lineage, tag edits and pointer moves."""
    uris = []
    async with stack.registry() as registry:
        for m in range(models):
            uri = f"{namespace}/m{m}"
            uris.append(uri)
            await registry.catalog.register_model(uri, description=f"model {m}", tags={"team": "a"})
            versions = []
            for _ in range(rng.randint(1, 3)):
                version = await registry.versioning.create_version(uri, bump=rng.choice(["major", "minor"]))
                versions.append(version.version)
                if rng.random() < 0.7:
                    await registry.lineage.record_lineage(
                        f"{uri}/{version.version}", lineage_record(rng.randrange(1 << 30))
                    )
            if rng.random() < 0.5:
                await registry.catalog.update_model(uri, tags={"team": rng.choice(["a", "b", "c"])})
            await registry.promotion.request_promotion(uri, {"STAGING": rng.choice(versions)})
            if rng.random() < 0.5:
                await registry.promotion.set_alias(uri, "champion", rng.choice(versions))
    return uris


def replayed(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


async def test_replay_of_every_service_matches_the_live_read_models(stack: Stack) -> None:
    await workload(stack, random.Random(14), f"ops{uuid.uuid4().hex[:6]}", models=8)
    reports = replayed(await ops(stack, "replay", "all", "-o", "json"))
    assert [r["service"] for r in reports] == ["catalog", "versioning", "lineage", "promotion", "audit"]
    assert all(r["matches"] and not r["swapped"] for r in reports), reports
    assert all(isinstance(r["events"], int) and r["events"] > 0 for r in reports)
    # The same rebuild shared out among worker processes (the default from WORKERS_FROM
    # events on; this log is smaller) folds the same rows.
    shared = replayed(await ops(stack, "replay", "versioning", "--workers", "2", "-o", "json"))
    assert [(r["service"], r["matches"]) for r in shared] == [("versioning", True)], shared
    assert shared[0]["events"] >= reports[1]["events"]


async def test_a_changed_row_is_reported_with_its_table_and_key(stack: Stack) -> None:
    namespace = f"ops{uuid.uuid4().hex[:6]}"
    uris = await workload(stack, random.Random(7), namespace, models=3)
    name = f"namespaces/{uris[1].replace('/', '/models/', 1)}"
    conn = await asyncpg.connect(stack.settings.pg_dsn)
    try:
        original = await conn.fetchval(
            "SELECT description FROM catalog.registered_models WHERE name = $1", name
        )
        assert original is not None
        await conn.execute(
            "UPDATE catalog.registered_models SET description = 'tampered' WHERE name = $1", name
        )
        try:
            result = await ops(stack, "replay", "catalog", "--swap", "-o", "json")
            assert result.returncode == 10, result.stdout + result.stderr
            [report] = json.loads(result.stdout)
            assert report["matches"] is False and report["swapped"] is False
            assert report["difference"]["table"] == "registered_models"
            assert report["difference"]["key"] == {"name": name}
            assert "tampered" in report["difference"]["live"]
            assert "tampered" not in report["difference"]["replayed"]
            text = await ops(stack, "replay", "catalog")
            assert text.returncode == 10
            assert "registered_models" in text.stdout and name in text.stdout
        finally:
            await conn.execute(
                "UPDATE catalog.registered_models SET description = $2 WHERE name = $1", name, original
            )
        # Refused swap: the tampered row is still what the live schema held.
        assert (
            await conn.fetchval("SELECT count(*) FROM catalog.registered_models WHERE name = $1", name) == 1
        )
    finally:
        await conn.close()


async def test_swap_under_live_reads_and_writes_loses_and_doubles_nothing(stack: Stack) -> None:
    namespace = f"ops{uuid.uuid4().hex[:6]}"
    uris = await workload(stack, random.Random(3), namespace, models=4)
    stop = asyncio.Event()
    written: list[str] = []
    read_errors: list[BaseException] = []
    reads = 0

    async def writer() -> None:
        async with stack.registry() as registry:
            i = 0
            while not stop.is_set() and i < 400:
                uri = f"{namespace}/live{i}"
                await registry.catalog.register_model(uri)
                await registry.versioning.create_version(uri, bump="major")
                written.append(uri)
                i += 1

    async def reader() -> None:
        nonlocal reads
        async with stack.registry() as registry:
            while not stop.is_set():
                try:
                    for uri in uris:
                        await registry.catalog.get_model(uri)
                        assert (await registry.versioning.get_version(f"{uri}/1")).version == 1
                        await registry.promotion.pointers(uri)
                    reads += 1
                except Exception as error:  # any failed read is the finding
                    read_errors.append(error)
                    return

    load = [asyncio.create_task(writer()), asyncio.create_task(reader())]
    try:
        # Worker processes build the shadows; the in-process catch-up folds chase the writes.
        swapped = replayed(await ops(stack, "replay", "all", "--swap", "--workers", "3", "-o", "json"))
    finally:
        stop.set()
        await asyncio.gather(*load)
    assert all(r["matches"] and r["swapped"] for r in swapped), swapped
    assert not read_errors, read_errors
    assert reads > 0 and written

    # The projectors carry on from the swapped-in checkpoints: new writes are folded and read back.
    async with stack.registry() as registry:
        after = f"{namespace}/after-swap"
        await registry.catalog.register_model(after)
        version = await registry.versioning.create_version(after, bump="major")
        assert version.version == 1
        for uri in written:
            assert [v.version for v in await registry.versioning.list_versions(uri)] == [1]
    conn = await asyncpg.connect(stack.settings.pg_dsn)
    try:
        names = await conn.fetch(
            "SELECT name FROM catalog.registered_models WHERE name LIKE $1",
            f"namespaces/{namespace}/models/live%",
        )
        assert sorted(r["name"] for r in names) == sorted(
            f"namespaces/{namespace}/models/{uri.split('/')[1]}" for uri in written
        )
    finally:
        await conn.close()
    # ... and what they folded since equals a clean rebuild, with nothing doubled or skipped.
    assert all(r["matches"] for r in replayed(await ops(stack, "replay", "all", "-o", "json")))


async def test_status_shows_lag_and_stuck_while_a_projector_is_stopped(stack: Stack, tmp_path: Path) -> None:
    archive = f"file://{tmp_path}"
    archived = await ops(stack, "archive", "--to", archive)
    assert archived.returncode == 0, archived.stderr
    healthy = replayed(
        await ops(stack, "status", "all", "--window", "0.5", "--archive", archive, "-o", "json")
    )
    assert {r["service"] for r in healthy} == {"catalog", "versioning", "lineage", "promotion", "audit"}
    assert all(r["lag"] == 0 and not r["stuck"] for r in healthy), healthy
    # The archive has copied everything there was, so it stands at each high watermark.
    assert all(r["archived"] == r["high_watermark"] for r in healthy), healthy

    catalog = stack.hosts["catalog"]
    assert catalog.projector is not None
    await catalog.projector.stop()
    try:
        async with AsyncRegistry(
            Endpoints(catalog=f"127.0.0.1:{catalog.port}"), bearer_token=TOKEN, retries=0
        ) as registry:
            # Appended to the log, then not folded: the write times out waiting for its verdict.
            with pytest.raises(Exception):  # noqa: B017 - the error type is not what is tested here
                await registry.catalog.register_model(f"ops{uuid.uuid4().hex[:6]}/unfolded")
        lagging = replayed(await ops(stack, "status", "catalog", "--window", "1", "-o", "json"))
        behind = [r for r in lagging if r["topic"].endswith("modelreg.catalog.v1") and r["lag"]]
        assert len(behind) == 1 and behind[0]["lag"] == 1 and behind[0]["stuck"], lagging
        assert behind[0]["high_watermark"] == behind[0]["checkpoint"] + 1
        text = await ops(stack, "status", "catalog", "--window", "0.5")
        assert text.returncode == 0 and "STUCK" in text.stdout
    finally:
        await catalog.projector.start()
    for _ in range(60):
        caught_up = replayed(await ops(stack, "status", "catalog", "--window", "0.2", "-o", "json"))
        if all(r["lag"] == 0 for r in caught_up):
            break
    assert all(r["lag"] == 0 and not r["stuck"] for r in caught_up), caught_up


@dataclass(frozen=True)
class Snapshot:
    """What a reader saw live at `time`."""

    time: datetime
    pointers: promotion_pb2.Pointers
    last_move: dict[str, str]
    """pointer -> transition request of the newest history entry that moved it."""
    lineage: dict[int, list[str]]
    """pointed version -> names of its current lineage records."""
    versions: dict[int, Any]
    """every version of the model -> GetModelVersion's answer."""
    graphs: dict[int, tuple[list[str], list[tuple[str, str, str, str]]]]
    """every version -> the node ids and edges (source, target, relation, record) upstream of it."""


def graph_of(
    response: lineage_pb2.GetLineageSubgraphResponse,
) -> tuple[list[str], list[tuple[str, str, str, str]]]:
    return (
        sorted(n.id for n in response.nodes),
        sorted((e.source, e.target, e.relation, e.record) for e in response.edges),
    )


async def snapshot(registry: AsyncRegistry, uri: str) -> Snapshot:
    pointers = await registry.promotion.pointers(uri)
    named = {**pointers.stages, **pointers.aliases}
    last_move = {}
    for pointer in named:
        last_move[pointer] = (await registry.promotion.history(uri, pointer=pointer))[0].transition_request
    lineage = {
        version: [r.name for r in await registry.lineage.list_lineage_records(f"{uri}/{version}")]
        for version in set(named.values())
    }
    versions = {v.version: v for v in await registry.versioning.list_versions(uri)}
    graphs = {
        number: graph_of(await registry.lineage.lineage_subgraph(f"{uri}/{number}", max_hops=2))
        for number in versions
    }
    # Taken after the reads: every event they saw occurred before it, the next one after.
    return Snapshot(datetime.now(UTC), pointers, last_move, lineage, versions, graphs)


async def test_as_of_at_several_moments_equals_what_was_read_live(stack: Stack) -> None:
    rng = random.Random(5)
    uri = f"ops{uuid.uuid4().hex[:6]}/asof"
    snapshots = []
    async with stack.registry() as registry:
        await registry.catalog.register_model(uri)
        versions: list[int] = []
        ready: list[int] = []
        records: dict[int, list[str]] = {}
        for step in range(14):
            action = (
                rng.choice(["version", "lineage", "correct", "promote", "alias", "archive", "deprecate"])
                if versions
                else "version"
            )
            if action == "version":
                versions.append((await registry.versioning.create_version(uri, bump="minor")).version)
                ready.append(versions[-1])
            elif action == "lineage":
                version = rng.choice(versions)
                record = await registry.lineage.record_lineage(f"{uri}/{version}", lineage_record(step))
                records.setdefault(version, []).append(record.name)
            elif action == "correct" and records:
                version = rng.choice(sorted(records))
                corrected = await supersede(stack, records[version][-1], lineage_record(1000 + step))
                records[version][-1] = corrected
            elif action == "promote":
                await registry.promotion.request_promotion(
                    uri, {rng.choice(["STAGING", "PRODUCTION"]): rng.choice(versions)}
                )
            elif action == "alias":
                await registry.promotion.set_alias(
                    uri, rng.choice(["champion", "challenger"]), rng.choice(versions)
                )
            elif action == "archive":
                await registry.promotion.request_promotion(uri, {"ARCHIVED": rng.choice(versions)})
            elif action == "deprecate" and ready:
                number = ready.pop(rng.randrange(len(ready)))
                await registry.versioning.deprecate_version(f"{uri}/{number}", reason=f"s{step}")
            snapshots.append(await snapshot(registry, uri))
        # A last step that surely changes the first version and its graph after every moment.
        if ready:
            await registry.versioning.deprecate_version(f"{uri}/{ready[0]}", reason="last")
        await registry.lineage.record_lineage(f"{uri}/{versions[0]}", lineage_record(99))
        snapshots.append(await snapshot(registry, uri))

        for seen in snapshots:
            answer = await registry.as_of(uri, seen.time)
            assert answer.pointers.stages == seen.pointers.stages
            assert answer.pointers.aliases == seen.pointers.aliases
            assert answer.pointers.archived_versions == seen.pointers.archived_versions
            assert answer.pointers.etag == seen.pointers.etag
            for entry in answer.entries:
                assert (
                    entry.move is not None and entry.move.transition_request == seen.last_move[entry.pointer]
                )
                assert entry.model_version.version == entry.version
                assert [r.name for r in entry.lineage] == seen.lineage[entry.version]
                assert entry.model_version == seen.versions[entry.version]
            # Every version as it stood then (GetModelVersion.as_of), its graph then
            # (GetLineageSubgraph.as_of), and none of the versions created later.
            for number in range(1, len(versions) + 1):
                uri_n = f"{uri}/{number}"
                if number in seen.versions:
                    assert (
                        await registry.versioning.get_version(uri_n, as_of=seen.time) == seen.versions[number]
                    )
                    graph = await registry.lineage.lineage_subgraph(uri_n, max_hops=2, as_of=seen.time)
                    assert graph_of(graph) == seen.graphs[number], (number, seen.time)
                else:
                    with pytest.raises(NotFound):
                        await registry.versioning.get_version(uri_n, as_of=seen.time)
            then = await registry.versioning.get_version(f"{uri}@latest", as_of=seen.time)
            assert then == seen.versions[max(seen.versions)]
        # The workload moved the versions on after the earliest moments: as-of is not "now".
        assert not ready or any(
            seen.versions[n] != snapshots[-1].versions[n] for seen in snapshots for n in seen.versions
        )
        assert any(seen.graphs != snapshots[-1].graphs for seen in snapshots)
        with pytest.raises(InvalidArgument) as refused:
            await registry.versioning.get_version(f"{uri}@champion", as_of=snapshots[-1].time)
        assert "GetPointers.as_of" in str(refused.value)
        # The CLI gives the same answer.
        last = snapshots[-1]
        shown = await client_cli(stack, "ops", "as-of", last.time.isoformat(), uri, "-o", "json")
        assert shown.returncode == 0, shown.stderr
        document = json.loads(shown.stdout)
        assert {e["pointer"]: e["version"] for e in document["entries"]} == {
            **last.pointers.stages,
            **last.pointers.aliases,
        }
        datasets = [d["digest"] for e in document["entries"] for r in e["lineage"] for d in r["datasets"]]
        assert all(d.startswith("sha256:") for d in datasets)
        before = await registry.promotion.pointers(uri, as_of=datetime(2000, 1, 1, tzinfo=UTC))
        assert not before.stages and not before.aliases and before.etag == 'W/"0"'


async def supersede(stack: Stack, name: str, record: lineage_pb2.LineageRecord) -> str:
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.hosts['lineage'].port}") as channel:
        stub = lineage_pb2_grpc.LineageServiceStub(channel)
        corrected = await stub.SupersedeLineageRecord(
            lineage_pb2.SupersedeLineageRecordRequest(name=name, record=record, reason="corrected digest"),
            metadata=[("authorization", f"Bearer {TOKEN}")],
        )
    return str(corrected.name)


async def client_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "MODELREG_TOKEN": TOKEN}
    env.update(
        {f"MODELREG_{name.upper()}_ADDR": f"127.0.0.1:{host.port}" for name, host in stack.hosts.items()}
    )
    return await run_cli_async(*args, env=env)


async def test_replay_as_of_builds_the_registry_of_then_which_serves_read_only(stack: Stack) -> None:
    from modelreg.catalog.main import spec as catalog
    from modelreg.client import FailedPrecondition
    from modelreg.promotion.main import spec as promotion

    uri = f"ops{uuid.uuid4().hex[:6]}/then"
    async with stack.registry() as registry:
        await registry.catalog.register_model(uri, description="as it was")
        await registry.versioning.create_version(uri, bump="major")
        await registry.promotion.request_promotion(uri, {"STAGING": 1})
        then = await registry.promotion.pointers(uri)
        moment = datetime.now(UTC)
        await registry.versioning.create_version(uri, bump="minor")
        await registry.promotion.request_promotion(uri, {"STAGING": 2})
        await registry.promotion.set_alias(uri, "champion", 2)
        await registry.catalog.update_model(uri, description="as it is now")

    into = f"asof_{uuid.uuid4().hex[:6]}"
    built = replayed(
        await ops(stack, "replay", "all", "--as-of", moment.isoformat(), "--into", into, "-o", "json")
    )
    assert [b["schema"] for b in built] == [
        f"{into}_{s}" for s in ("catalog", "versioning", "lineage", "promotion", "audit")
    ]

    hosts = []
    try:
        with promotion_env():
            for spec in (catalog(f"{into}_catalog"), promotion(f"{into}_promotion")):
                host = ServiceHost(spec, stack.settings)
                await host.start(port=0, read_only=True)
                hosts.append(host)
        endpoints = Endpoints(catalog=f"127.0.0.1:{hosts[0].port}", promotion=f"127.0.0.1:{hosts[1].port}")
        async with AsyncRegistry(endpoints, bearer_token=TOKEN, retries=0) as past:
            assert (await past.promotion.pointers(uri)) == then
            assert (await past.catalog.get_model(uri)).description == "as it was"
            with pytest.raises(FailedPrecondition):
                await past.catalog.update_model(uri, description="rewrite history")
            with pytest.raises(FailedPrecondition):
                await past.promotion.set_alias(uri, "champion", 1)
    finally:
        for host in hosts:
            await host.stop()

    # The same cut given as offsets builds the same tables.
    [catalog_cut] = [b for b in built if b["service"] == "catalog"]
    offsets = ",".join(f"{position}={offset}" for position, offset in catalog_cut["offsets"].items())
    again = replayed(
        await ops(stack, "replay", "catalog", "--as-of", offsets, "--into", f"{into}_again", "-o", "json")
    )
    assert again[0]["events"] == catalog_cut["events"]
    conn = await asyncpg.connect(stack.settings.pg_dsn)
    try:
        tables = ["registered_models", "namespaces", "event_outcomes", "stream_heads"]
        assert await digest(conn, f"{into}_again", tables) == await digest(conn, f"{into}_catalog", tables)
        for schema in [*(b["schema"] for b in built), f"{into}_again"]:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


async def test_status_counts_conflicts_and_aborts_per_partition_and_a_swap_keeps_them(stack: Stack) -> None:
    """A command that conflicts on every attempt is ABORTED; `ops status` shows the abort (and
    its conflicts) on the partition of its stream, and still does after a replay swap."""
    from modelreg.commands.contracts import Loaded
    from modelreg.commands.executor import Command, CommandExecutor, OutcomeStore
    from modelreg.errors import Aborted
    from modelreg.eventlog import EventContext, StreamHead
    from modelreg.gen.common.v1 import access_pb2

    host = stack.hosts["catalog"]
    assert host.pool is not None and host.log is not None and host.progress is not None
    schema = host.spec.schema
    topic = host.topic(host.spec.own_topic)
    executor = CommandExecutor(
        log=host.log,
        outcomes=OutcomeStore(host.pool, schema),
        progress=host.progress,
        topic=topic,
        source="modelreg/catalog",
        max_attempts=3,
    )
    stream = f"namespaces/ops{uuid.uuid4().hex[:6]}/access-denials"
    fact = access_pb2.AccessDenied(principal="mallory", action="x", resource="y", reason="z", namespace="n")

    async def stale(_: str) -> Loaded[None]:
        # A read model that never catches up: every append expects a revision the stream is not at.
        return Loaded(None, StreamHead(41, b"\0" * 32))

    before = {
        r["partition"]: (r["conflicts"], r["aborts"])
        for r in replayed(await ops(stack, "status", "catalog", "--window", "0", "-o", "json"))
        if r["topic"] == topic
    }
    with pytest.raises(Aborted):
        await executor.execute(
            Command(
                stream,
                EventContext(actor="alice", request_id=str(uuid.uuid4())),
                stale,
                lambda _: ("access_refused", fact),
            )
        )
    async with host.pool.acquire() as conn:
        partition = await conn.fetchval(
            f'SELECT partition FROM "{schema}".command_aborts WHERE stream = $1', stream
        )
    after = {
        r["partition"]: (r["conflicts"], r["aborts"])
        for r in replayed(await ops(stack, "status", "catalog", "--window", "0", "-o", "json"))
        if r["topic"] == topic
    }
    assert after[partition] == (before[partition][0] + 3, before[partition][1] + 1)
    assert all(after[p] == before[p] for p in after if p != partition)
    text = await ops(stack, "status", "catalog", "--window", "0")
    assert text.returncode == 0 and "aborts" in text.stdout
    # The aborts are not a fold of the log: a swapped-in rebuild keeps them.
    swapped = replayed(await ops(stack, "replay", "catalog", "--swap", "-o", "json"))
    assert swapped[0]["swapped"], swapped
    kept = {
        r["partition"]: r["aborts"]
        for r in replayed(await ops(stack, "status", "catalog", "--window", "0", "-o", "json"))
        if r["topic"] == topic
    }
    assert kept[partition] == after[partition][1]

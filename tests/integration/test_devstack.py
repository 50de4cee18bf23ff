"""The devstack starts real servers: Tansu, PostgreSQL (embedded or external) and moto S3."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import uuid
from collections import defaultdict
from pathlib import Path

import asyncpg
import psutil
import pytest
import urllib3
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from minio import Minio

from modelreg.devstack import (
    LocalStack,
    MotoS3Server,
    PostgresServer,
    TansuBroker,
    create_database,
    create_topics,
    docker_engine_available,
    drop_database,
)
from modelreg.devstack.ports import port_is_open


def _gone(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def no_external_pg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELREG_PG_DSN", raising=False)


async def _topics(bootstrap_servers: str) -> set[str]:
    # list_topics() asks for all topics, which (unlike naming one) never auto-creates.
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_tansu_keyed_roundtrip_and_stop() -> None:
    broker = TansuBroker.start()
    try:
        await create_topics(broker.bootstrap_servers, {"orders": 3})
        keys = [f"key-{i}".encode() for i in range(6)]
        per_key = 15
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, acks="all", enable_idempotence=False
        )
        await producer.start()
        try:
            for seq in range(per_key):
                for key in keys:
                    await producer.send("orders", key=key, value=f"{key.decode()}:{seq}".encode())
            await producer.flush()
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            "orders",
            bootstrap_servers=broker.bootstrap_servers,
            group_id=f"g-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            # Tansu holds JoinGroup for about session_timeout/2 (5 s at the 10 s default).
            session_timeout_ms=2000,
            heartbeat_interval_ms=500,
        )
        await consumer.start()
        seen: dict[bytes, list[int]] = defaultdict(list)
        partitions: dict[bytes, set[int]] = defaultdict(set)
        try:
            async with asyncio.timeout(20):
                while sum(map(len, seen.values())) < len(keys) * per_key:
                    batch = await consumer.getmany(timeout_ms=500)
                    for records in batch.values():
                        for record in records:
                            assert record.key is not None and record.value is not None
                            seen[record.key].append(int(record.value.split(b":")[1]))
                            partitions[record.key].add(record.partition)
        finally:
            await consumer.stop()

        assert set(seen) == set(keys)
        for key in keys:
            assert seen[key] == list(range(per_key)), key
            assert len(partitions[key]) == 1, key
        # With 6 keys over 3 partitions, a single-partition topic would be indistinguishable.
        assert len(set().union(*partitions.values())) > 1
    finally:
        broker.stop()

    assert broker.process.poll() is not None
    assert not port_is_open("127.0.0.1", broker.port)


async def test_two_tansu_brokers_are_independent() -> None:
    with TansuBroker.start() as first, TansuBroker.start() as second:
        assert first.bootstrap_servers != second.bootstrap_servers
        await create_topics(first.bootstrap_servers, {"only-on-first": 2})
        await create_topics(second.bootstrap_servers, {"only-on-second": 1})
        assert "only-on-first" in await _topics(first.bootstrap_servers)
        assert "only-on-first" not in await _topics(second.bootstrap_servers)
        assert "only-on-second" not in await _topics(first.bootstrap_servers)
    assert first.process.poll() is not None and second.process.poll() is not None


async def test_create_topics_rejects_partition_mismatch() -> None:
    with TansuBroker.start() as broker:
        await create_topics(broker.bootstrap_servers, {"events": 2})
        await create_topics(broker.bootstrap_servers, {"events": 2})  # idempotent
        with pytest.raises(RuntimeError, match="partitions"):
            await create_topics(broker.bootstrap_servers, {"events": 3})


@pytest.mark.usefixtures("no_external_pg")
async def test_embedded_postgres_lifecycle() -> None:
    server = PostgresServer.start()
    try:
        assert server.embedded
        assert server.admin_dsn.startswith("postgresql://postgres@127.0.0.1:")
        dsn = await create_database(server.admin_dsn, "modelreg_test")
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT current_database()") == "modelreg_test"
            # Throwaway clusters trade durability for speed.
            assert await conn.fetchval("SHOW fsync") == "off"
        finally:
            await conn.close()
        await drop_database(server.admin_dsn, "modelreg_test")
        admin = await asyncpg.connect(server.admin_dsn)
        try:
            exists = await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname = 'modelreg_test'")
        finally:
            await admin.close()
        assert exists == 0
    finally:
        server.stop()
    assert _gone(server.pid)
    assert server.pgdata is not None and not server.pgdata.exists()


@pytest.mark.usefixtures("no_external_pg")
async def test_drop_database_disconnects_sessions() -> None:
    with PostgresServer.start() as server:
        dsn = await create_database(server.admin_dsn, "busy")
        conn = await asyncpg.connect(dsn)
        await drop_database(server.admin_dsn, "busy")
        assert conn.is_closed() or not await _alive(conn)


async def _alive(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
        return True
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
        return False


@pytest.mark.usefixtures("no_external_pg")
async def test_external_postgres_via_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server named by MODELREG_PG_DSN is used as it is, and left running on stop().

    The "external" server is one this test starts itself, so the test does not
    depend on whatever listens on 5432 on the machine.
    """
    with PostgresServer.start() as external:
        monkeypatch.setenv("MODELREG_PG_DSN", external.admin_dsn)
        port = int(external.admin_dsn.rsplit(":", 1)[1].split("/", 1)[0])
        with PostgresServer.start() as server:
            assert not server.embedded
            assert server.admin_dsn == external.admin_dsn
            name = f"modelreg_devstack_{uuid.uuid4().hex[:10]}"
            dsn = await create_database(server.admin_dsn, name)
            try:
                conn = await asyncpg.connect(dsn)
                try:
                    assert await conn.fetchval("SELECT current_database()") == name
                finally:
                    await conn.close()
            finally:
                await drop_database(server.admin_dsn, name)
        assert port_is_open("127.0.0.1", port)  # stop() must leave an external server alone


@pytest.mark.usefixtures("no_external_pg")
async def test_persistent_data_dir_survives_restart(pg_tmp_path: Path) -> None:
    data_dir = pg_tmp_path / "pgdata"
    with PostgresServer.start(data_dir) as server:
        conn = await asyncpg.connect(server.admin_dsn)
        try:
            # Persistent clusters keep PostgreSQL's durability defaults.
            assert await conn.fetchval("SHOW fsync") == "on"
            await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')")
        finally:
            await conn.close()
    assert _gone(server.pid)

    # Simulate a crash leftover: a postmaster.pid naming a process that no longer exists.
    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()
    (data_dir / "postmaster.pid").write_text(f"{dead.pid}\n{data_dir}\n")

    with PostgresServer.start(data_dir) as again:
        conn = await asyncpg.connect(again.admin_dsn)
        try:
            assert await conn.fetchval("SELECT v FROM kept") == "hello"
        finally:
            await conn.close()
    assert data_dir.joinpath("PG_VERSION").exists()


def test_moto_s3_roundtrip_with_minio_client() -> None:
    with MotoS3Server.start() as s3:
        client = Minio(
            s3.endpoint,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            region=s3.region,
            secure=False,
        )
        bucket = f"devstack-{uuid.uuid4().hex[:8]}"
        client.make_bucket(bucket)
        body = b"model weights, allegedly"
        client.put_object(bucket, "a/model.bin", io.BytesIO(body), length=len(body))
        response = client.get_object(bucket, "a/model.bin")
        try:
            assert response.read() == body
        finally:
            response.close()
            response.release_conn()

        url = client.presigned_put_object(bucket, "b/presigned.bin")
        upload = urllib3.request(
            "PUT",
            url,
            body=b"uploaded directly",
            # Without it moto stores an empty object for presigned PUTs.
            headers={"Content-Type": "application/octet-stream"},
        )
        assert upload.status == 200
        response = client.get_object(bucket, "b/presigned.bin")
        try:
            assert response.read() == b"uploaded directly"
        finally:
            response.close()
            response.release_conn()
    assert not port_is_open("127.0.0.1", s3.port)


def test_docker_engine_available_matches_docker_info() -> None:
    if shutil.which("docker") is None:
        expected = False
    else:
        try:
            result = subprocess.run(["docker", "info"], capture_output=True, timeout=10)
            expected = result.returncode == 0
        except subprocess.TimeoutExpired:
            expected = False
    assert docker_engine_available() is expected


@pytest.mark.usefixtures("no_external_pg")
def test_local_stack_stops_everything_even_if_one_stop_fails() -> None:
    stack = LocalStack(with_s3=True, use_containers=False)
    assert stack.s3 is not None
    kafka_process, pg_pid = stack.kafka.process, stack.postgres.pid
    assert port_is_open("127.0.0.1", stack.kafka.port)

    real_stop = stack.s3.stop

    def failing_stop() -> None:
        real_stop()
        raise RuntimeError("boom")

    stack.s3.stop = failing_stop
    with pytest.raises(RuntimeError, match="boom"):
        stack.stop()
    assert kafka_process.poll() is not None
    assert _gone(pg_pid)

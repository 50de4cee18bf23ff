"""The fault suite: a randomized workload through the SDK against all four services running as
processes, with one fault at a time. After each fault: every acknowledged command is in the log
and accepted exactly once, no command has two effects, every read model equals a clean replay by
digest, and no read with a token was stale. The last test prints the summary line.

The scenarios share one stack and one ledger, in order; the ones that leave marks in the log
(duplicated and forged records) come last.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import replace

import asyncpg
import psutil
import pytest
from aiokafka import AIOKafkaProducer

from modelreg.client import AsyncRegistry, NotFound
from modelreg.eventlog import GENESIS_HASH, EventContext, build_envelope, decode
from modelreg.eventlog.integrity import LogIntegrity
from modelreg.eventlog.kafka import KafkaEventLog
from modelreg.gen.catalog.v1 import catalog_pb2, events_pb2
from tests.faults.harness import (
    CATALOG_PROJECTOR,
    Ledger,
    Stack,
    Verdict,
    check,
    read_topic,
    running_stack,
    summary,
    wait_for_load,
    workload_running,
)

LOAD = 25
"""Operations before and after each fault: enough to have writes in flight when it hits."""

pytestmark = pytest.mark.timeout(420)


class Run:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.ledger = Ledger()
        self.faults = 0
        self.last = Verdict([], [], [])
        self.errors: Counter[str] = Counter()
        self.stale_reads = 0

    async def assert_sound(self) -> None:
        self.last = await check(self.stack, self.ledger)
        ledger = self.ledger
        # Errors and stale reads are a scenario's own; lost, doubled and replay state is the log's.
        errors, stale = dict(ledger.errors), list(ledger.stale_reads)
        messages = list(ledger.error_messages)
        ledger.error_messages.clear()
        self.errors.update(ledger.errors)
        self.stale_reads += len(stale)
        ledger.errors.clear()
        ledger.stale_reads.clear()
        assert not self.last.lost, f"acknowledged but not in the log/accepted: {self.last.lost[:5]}"
        assert not self.last.duplicated, f"two effects: {self.last.duplicated[:5]}"
        assert not self.last.digest_mismatches, self.last.digest_mismatches
        assert not stale, f"stale reads: {stale[:5]}"
        assert not errors, f"commands that failed: {errors}: {messages}"


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    with running_stack() as stack:
        yield Run(stack)


async def under_load(run: Run, fault: Awaitable[object]) -> None:
    """Load, the fault (a coroutine), more load, then the invariants."""
    async with workload_running(run.stack.endpoints, run.ledger):
        await wait_for_load(run.ledger, LOAD)
        await fault
        run.faults += 1
        await wait_for_load(run.ledger, LOAD)
    await run.assert_sound()


async def in_transaction(dsn: str, pid: int) -> bool:
    """Whether process `pid` has a PostgreSQL transaction open (a batch in flight)."""
    ports = {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp") if c.laddr}
    conn = await asyncpg.connect(dsn)
    try:
        open_ = await conn.fetch(
            "SELECT client_port FROM pg_stat_activity WHERE xact_start IS NOT NULL AND state <> 'idle'"
        )
    finally:
        await conn.close()
    return any(row["client_port"] in ports for row in open_)


async def test_a_projector_killed_mid_batch(run: Run) -> None:
    async def fault() -> None:
        stack = run.stack
        # Aim for a moment with a batch's transaction open; on a loaded machine the poll may
        # miss every one, and then the kill still lands under load.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if await in_transaction(stack.dsn, stack.processes[CATALOG_PROJECTOR].pid):
                break
        stack.kill(CATALOG_PROJECTOR)
        stack.start(CATALOG_PROJECTOR)

    await under_load(run, fault())


async def test_a_service_killed_between_append_and_answer(run: Run) -> None:
    async def fault() -> None:
        # Under load a create/finalize is almost always between its append and its answer;
        # the workload retries the same request_id until the restarted service answers.
        await asyncio.to_thread(run.stack.restart, "versioning")

    await under_load(run, fault())


async def test_a_postgres_restart_under_load(run: Run) -> None:
    await under_load(run, asyncio.to_thread(run.stack.postgres.restart))


async def test_a_stalled_broker(run: Run) -> None:
    async def fault() -> None:
        broker = run.stack.broker.process
        broker.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(3)
        finally:
            broker.send_signal(signal.SIGCONT)

    await under_load(run, fault())


async def test_a_slow_projector_while_tokens_cross_services(run: Run) -> None:
    async def fault() -> None:
        projector = run.stack.processes[CATALOG_PROJECTOR]
        for _ in range(10):
            projector.send_signal(signal.SIGSTOP)
            await asyncio.sleep(0.4)
            projector.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.2)

    await under_load(run, fault())


async def duplicate_records(run: Run, topic: str, *, other_partition: bool) -> None:
    records = await read_topic(run.stack.kafka, topic)
    rng = random.Random(7)
    producer = AIOKafkaProducer(bootstrap_servers=run.stack.kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        partitions = sorted(records)
        for partition in partitions:
            target = (
                partitions[(partitions.index(partition) + 1) % len(partitions)]
                if other_partition
                else partition
            )
            for record in rng.sample(records[partition], min(10, len(records[partition]))):
                assert record.value is not None
                key = decode(record.value).stream.encode()
                await producer.send_and_wait(topic, value=record.value, key=key, partition=target)
    finally:
        await producer.stop()


async def test_records_duplicated_on_the_same_partition(run: Run) -> None:
    topics = [run.stack.kafka.topic(f"modelreg.{s}.v1") for s in ("catalog", "versioning")]
    await under_load(run, asyncio.gather(*(duplicate_records(run, t, other_partition=False) for t in topics)))


async def test_records_duplicated_onto_another_partition(run: Run) -> None:
    topics = [run.stack.kafka.topic(f"modelreg.{s}.v1") for s in ("catalog", "lineage", "promotion")]
    await under_load(run, asyncio.gather(*(duplicate_records(run, t, other_partition=True) for t in topics)))


async def test_a_forged_record_changes_nothing(run: Run) -> None:
    stream = "namespaces/forged/models/intruder"

    async def fault() -> None:
        # Well-formed, hash-chained, but not written by the catalog: its signature (if any)
        # is not made with the catalog's key.
        forged = build_envelope(
            stream=stream,
            payload_field="registered_model_created",
            payload=events_pb2.RegisteredModelCreated(
                registered_model=catalog_pb2.RegisteredModel(name=stream)
            ),
            expected_revision=0,
            prev_hash=GENESIS_HASH,
            source="modelreg/catalog",
            context=EventContext(actor="mallory"),
        )
        # Signed by a key of its own that claims the trusted key's id.
        log = KafkaEventLog(replace(run.stack.kafka, integrity=LogIntegrity.generated("faults")))
        await log.start()
        try:
            await log.append(run.stack.kafka.topic("modelreg.catalog.v1"), forged)
        finally:
            await log.stop()

    await under_load(run, fault())
    async with AsyncRegistry(run.stack.endpoints) as registry:
        with pytest.raises(NotFound):
            await registry.catalog.get_model("forged/intruder")


async def test_summary(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        await run.assert_sound()
    finally:
        line = summary(run.ledger, run.faults, run.last, stale_reads=run.stale_reads, errors=run.errors)
        with capsys.disabled():
            print(f"\n{line}")
    assert run.faults == 8

"""The audit trail against the whole registry: a randomized workload through the SDK by
several principals across the four services; the trail holds every acknowledged command
exactly once, with its actor and action, and nothing else; denials reach it; it pages and
filters; the CLI shows it; and it equals a replay of the log from offset 0, by digest."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC

import pytest

from modelreg.client import InvalidArgument, PermissionDenied
from modelreg.gen.audit.v1 import audit_pb2
from modelreg.gen.lineage.v1 import lineage_pb2
from modelreg.projections.shadow import ReadModel, replay_into_shadow
from tests.helpers import run_cli_async, unique
from tests.integration.audit.conftest import TOKENS, Stack

VERSION_ACTIONS = ("ModelVersionCreated", "ModelVersionFinalized")
ALIAS_ACTIONS = ("TransitionApplied",)  # an unprotected alias moves at once


@dataclass
class Workload:
    ns: str
    expected: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(resource, actor, action) -> how many times the trail must hold it."""
    by_request: dict[str, tuple[str, str]] = field(default_factory=dict)
    """request_id the test chose -> (actor, action)."""
    tokens: list[str] = field(default_factory=list)


def name(uri: str) -> str:
    ns, model = uri.split("/")
    return f"namespaces/{ns}/models/{model}"


async def run_workload(stack: Stack, seed: int) -> Workload:
    """Random commands by alice and bob on a few models of a new namespace."""
    rng = random.Random(seed)
    work = Workload(unique("au"))
    clients = {p: stack.client(p) for p in ("alice", "bob")}
    models = [f"{work.ns}/m{i}" for i in range(3)]
    versions: dict[str, int] = defaultdict(int)
    deprecated: set[str] = set()
    champion: dict[str, int] = {}
    try:
        for i, uri in enumerate(models):
            actor = rng.choice(list(clients))
            if i == 0:  # the first model creates its namespace implicitly
                work.expected[(f"namespaces/{work.ns}", actor, "NamespaceCreated")] += 1
            request_id = str(uuid.uuid4())
            await clients[actor].catalog.register_model(uri, description="first", request_id=request_id)
            # A retry with the same request_id: acknowledged again, one effect.
            await clients[actor].catalog.register_model(uri, description="first", request_id=request_id)
            work.expected[(name(uri), actor, "RegisteredModelCreated")] += 1
            work.by_request[request_id] = (actor, "RegisteredModelCreated")
        for _ in range(16):
            uri = rng.choice(models)
            actor = rng.choice(list(clients))
            client = clients[actor]
            kind = rng.choice(["update", "version", "version", "lineage", "alias", "deprecate"])
            if kind == "update":
                await client.catalog.update_model(uri, description=f"d{rng.random()}")
                work.expected[(name(uri), actor, "RegisteredModelUpdated")] += 1
            elif kind == "version":
                request_id = str(uuid.uuid4())
                created = await client.versioning.create_version(uri, bump="minor", request_id=request_id)
                versions[uri] = created.version
                work.by_request[request_id] = (actor, "ModelVersionCreated")
                for action in VERSION_ACTIONS:
                    work.expected[(name(uri), actor, action)] += 1
            elif kind == "lineage" and versions[uri]:
                dataset = lineage_pb2.Dataset(uri=f"s3://d/{rng.random()}", digest="sha256:" + "ab" * 32)
                await client.lineage.record_lineage(
                    f"{uri}/{versions[uri]}", lineage_pb2.LineageRecord(datasets=[dataset])
                )
                work.expected[(name(uri), actor, "LineageRecorded")] += 1
            elif kind == "alias" and versions[uri] and champion.get(uri) != versions[uri]:
                await client.promotion.set_alias(uri, "champion", versions[uri], comment="looks good")
                champion[uri] = versions[uri]
                for action in ALIAS_ACTIONS:
                    work.expected[(name(uri), actor, action)] += 1
            elif kind == "deprecate" and versions[uri] > 1 and uri not in deprecated:
                await client.versioning.deprecate_version(f"{uri}/1", reason="superseded by a better one")
                deprecated.add(uri)
                work.expected[(name(uri), actor, "ModelVersionDeprecated")] += 1
        # Two writers racing on one model: optimistic conflicts are settled inside the
        # services and never reach the trail; both updates are acknowledged once each.
        uri = models[0]
        await asyncio.gather(
            clients["alice"].catalog.update_model(uri, description="race a"),
            clients["bob"].catalog.update_model(uri, description="race b"),
        )
        work.expected[(name(uri), "alice", "RegisteredModelUpdated")] += 1
        work.expected[(name(uri), "bob", "RegisteredModelUpdated")] += 1
        work.tokens = [c.consistency_token for c in clients.values()]
    finally:
        for client in clients.values():
            await client.close()
    return work


async def trail(stack: Stack, work: Workload, **kwargs: object) -> list[audit_pb2.AuditEvent]:
    """The trail as carol (a viewer) reads it, carrying the workload's consistency tokens."""
    async with stack.client("carol") as reader:
        for token in work.tokens:
            reader.observe(token)
        return await reader.audit.list_audit_events(work.ns, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def work(stack: Stack) -> Workload:
    seed = random.randrange(1 << 30)
    print(f"workload seed {seed}")
    return await run_workload(stack, seed)


async def test_the_trail_holds_every_acknowledged_command_exactly_once(stack: Stack, work: Workload) -> None:
    events = await trail(stack, work)
    assert Counter((e.resource, e.actor, e.action) for e in events) == work.expected
    assert len({e.event_id for e in events}) == len(events)
    for request_id, (actor, action) in work.by_request.items():
        [event] = [e for e in events if e.request_id == request_id]
        assert (event.actor, event.action) == (actor, action)
    # In time order, and each stream's events form its hash chain, revision after revision.
    times = [(e.occur_time.ToNanoseconds(), e.topic, e.partition, e.offset) for e in events]
    assert times == sorted(times)
    streams: dict[tuple[str, str], list[audit_pb2.AuditEvent]] = defaultdict(list)
    for event in events:
        assert event.namespace == work.ns and event.topic.endswith(".v1") and event.hash
        streams[(event.topic, event.resource)].append(event)
    for chain in streams.values():
        chain.sort(key=lambda e: e.revision)
        assert [e.revision for e in chain] == list(range(1, len(chain) + 1))
        assert chain[0].prev_hash == bytes(32)
        for before, after in zip(chain, chain[1:], strict=False):
            assert after.prev_hash == before.hash
    comments = {e.action: e.comment for e in events}
    if "TransitionApplied" in comments:
        assert comments["TransitionApplied"] == "looks good"
    if "ModelVersionDeprecated" in comments:
        assert comments["ModelVersionDeprecated"] == "superseded by a better one"
    updated = next(e for e in events if e.action == "RegisteredModelUpdated")
    assert json.loads(updated.changes)["registered_model"]["description"]


async def test_a_denial_reaches_the_trail(stack: Stack, work: Workload) -> None:
    uri = f"{work.ns}/m0"
    async with stack.client("carol") as carol:
        with pytest.raises(PermissionDenied):
            await carol.promotion.set_alias(uri, "champion", 1)
    # The denial's own append carries no token back; the trail is waited on by condition.
    denied: list[audit_pb2.AuditEvent] = []
    async with asyncio.timeout(30):
        while not denied:
            denied = await trail(stack, work, action="AccessDenied")
            await asyncio.sleep(0.05)
    [event] = denied
    assert event.actor == "carol" and event.namespace == work.ns
    assert event.comment.startswith("CreateTransitionRequest")
    assert event.model == name(uri)


async def test_the_audit_services_own_denials_reach_the_trail(stack: Stack, work: Workload) -> None:
    """The fifth service records its denials on its own topic, and folds them into the trail."""
    async with stack.client("dave") as dave:
        with pytest.raises(PermissionDenied):
            await dave.audit.list_audit_events(work.ns)
    denied: list[audit_pb2.AuditEvent] = []
    async with asyncio.timeout(30):
        while not denied:
            denied = [e for e in await trail(stack, work, action="AccessDenied") if e.actor == "dave"]
            await asyncio.sleep(0.05)
    [event] = denied
    assert event.namespace == work.ns and event.comment.startswith("ListAuditEvents")


async def test_paging_and_filters(stack: Stack, work: Workload) -> None:
    events = await trail(stack, work)
    paged = await trail(stack, work, page_size=2)
    assert [e.event_id for e in paged] == [e.event_id for e in events]
    bob = await trail(stack, work, actor="bob")
    assert [e.event_id for e in bob] == [e.event_id for e in events if e.actor == "bob"]
    model = await trail(stack, work, model=f"{work.ns}/m0")
    assert model and [e.event_id for e in model] == [
        e.event_id for e in events if e.model == name(f"{work.ns}/m0")
    ]
    middle = events[len(events) // 2].occur_time.ToDatetime(tzinfo=UTC)
    later = await trail(stack, work, since=middle)
    earlier = await trail(stack, work, until=middle)
    assert [e.event_id for e in earlier + later][: len(events)] == [e.event_id for e in events]
    created = await trail(stack, work, action="RegisteredModelCreated")
    assert len(created) == 3


async def test_bad_queries_are_invalid_argument(stack: Stack, work: Workload) -> None:
    async with stack.client("carol") as reader:
        with pytest.raises(InvalidArgument):
            await reader.audit.list_audit_events(work.ns, filter="actor ~ 1")
        with pytest.raises(InvalidArgument):
            await reader.audit.list_audit_events(work.ns, filter="nonsense = 1")
        with pytest.raises(InvalidArgument):
            await reader.audit.list_audit_events("Bad Namespace!")


async def test_cli_lists_the_trail(stack: Stack, work: Workload) -> None:
    env = {
        **os.environ,
        "MODELREG_AUDIT_ADDR": stack.endpoints.audit,
        "MODELREG_TOKEN": TOKENS["carol"],
        "COLUMNS": "250",
    }

    async def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return await run_cli_async("audit", "list", *args, env=env, timeout=60)

    as_json = await cli("--model", f"{work.ns}/m1", "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert rows and {r["model"] for r in rows} == {name(f"{work.ns}/m1")}
    assert rows[0]["action"] == "RegisteredModelCreated"
    table = await cli("--namespace", work.ns, "--action", "RegisteredModelCreated")
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("RegisteredModelCreated") == 3


async def test_the_trail_equals_a_replay_from_offset_zero(stack: Stack, work: Workload) -> None:
    host = stack.audit
    assert host.pool is not None
    model = ReadModel(
        "audit",
        host.spec.schema,
        {host.topic(logical): handler for logical, handler in host.spec.projections},
    )
    shadow = f"{host.spec.schema}_shadow"
    result = await replay_into_shadow(host.pool, model, stack.settings.kafka, shadow=shadow, swap=False)
    assert result.matches, result.difference
    assert result.events > 0
    assert result.live_digest["audit_events"] == result.shadow_digest["audit_events"]
    async with host.pool.acquire() as conn:
        assert await conn.fetchval(f'SELECT count(*) FROM "{shadow}".audit_events') >= len(work.expected)
        await conn.execute(f'DROP SCHEMA "{shadow}" CASCADE')

"""Signed checkpoints against the running audit service: every audited partition's tree
is checkpointed up to its size, each checkpoint's root is the RFC 6962 root of the
partition's accepted events in log order, signed by the service's key, chained to the
previous one, and consistent with it; the keys endpoint lists current and retired keys."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import grpc

from modelreg.auditlog.checkpoint import GENESIS, BadCheckpoint, Checkpoint, SignedCheckpoint
from modelreg.gen.audit.v1 import audit_pb2, audit_pb2_grpc
from modelreg.merkle import MerkleTree, leaf_hash, verify_consistency
from tests.helpers import unique
from tests.integration.audit.conftest import Stack


async def settled(stack: Stack) -> dict[tuple[str, int], list[Any]]:
    """Waits (by condition) until every audited partition's newest checkpoint covers its whole
    tree; returns each partition's checkpoints in size order."""
    host = stack.audit
    assert host.pool is not None
    s = f'"{host.spec.schema}"'
    async with asyncio.timeout(60):
        while True:
            async with host.pool.acquire() as conn:
                behind = await conn.fetchval(
                    f"SELECT count(*) FROM {s}.merkle_frontiers f WHERE f.size >"
                    f" coalesce((SELECT max(size) FROM {s}.signed_checkpoints c"
                    " WHERE c.topic = f.topic AND c.partition = f.partition), 0)"
                )
                if behind == 0:
                    rows = await conn.fetch(
                        f"SELECT * FROM {s}.signed_checkpoints ORDER BY topic, partition, size"
                    )
                    break
            await asyncio.sleep(0.1)
    chains: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for row in rows:
        chains[(row["topic"], row["partition"])].append(row)
    return chains


async def test_checkpoints_sign_the_trees_of_every_partition(stack: Stack) -> None:
    ns = unique("cp")
    async with stack.client("alice") as alice:
        for i in range(6):
            await alice.catalog.register_model(f"{ns}/m{i}")
            await alice.versioning.create_version(f"{ns}/m{i}", bump="major")
    chains = await settled(stack)
    host = stack.audit
    assert host.pool is not None
    keys = {stack.signer.key_id: stack.signer.public_key}
    assert {topic.rsplit(".", 2)[-2] for topic, _ in chains} >= {"catalog", "versioning"}
    for (topic, partition), chain in chains.items():
        async with host.pool.acquire() as conn:
            records = await conn.fetch(
                f'SELECT leaf_index, record FROM "{host.spec.schema}".audit_events'
                " WHERE topic = $1 AND partition = $2 ORDER BY leaf_index",
                topic,
                partition,
            )
        assert [r["leaf_index"] for r in records] == list(range(len(records)))
        tree = MerkleTree([leaf_hash(bytes(r["record"])) for r in records])
        previous, size = GENESIS, 0
        for row in chain:
            signed = SignedCheckpoint(Checkpoint.parse(bytes(row["body"])), bytes(row["signature"]))
            signed.verify(keys)
            c = signed.checkpoint
            assert (c.topic, c.partition, c.size, c.root) == (
                topic,
                partition,
                row["size"],
                bytes(row["root"]),
            )
            assert c.root == tree.root(c.size)
            assert c.previous == previous and c.key_id == stack.signer.key_id
            if size:
                proof = tree.consistency_proof(size, c.size)
                assert verify_consistency(size, c.size, proof, tree.root(size), c.root)
            previous, size = c.hash, c.size
        assert size == tree.size


async def test_a_checkpoint_from_an_unknown_key_fails(stack: Stack) -> None:
    chains = await settled(stack)
    row = next(iter(chains.values()))[-1]
    signed = SignedCheckpoint(Checkpoint.parse(bytes(row["body"])), bytes(row["signature"]))
    try:
        signed.verify({stack.retired.key_id: stack.retired.public_key})
    except BadCheckpoint as error:
        assert "unknown key" in str(error)
    else:
        raise AssertionError("verified with no key of its signer")


async def test_keys_and_checkpoints_endpoints(stack: Stack) -> None:
    await settled(stack)
    async with grpc.aio.insecure_channel(stack.endpoints.audit) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        md = [("authorization", "Bearer t-carol")]
        keys = await stub.ListAuditKeys(audit_pb2.ListAuditKeysRequest(), metadata=md)
        assert [(k.key_id, k.current) for k in keys.keys] == [
            (stack.signer.key_id, True),
            (stack.retired.key_id, False),
        ]
        assert keys.keys[0].public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
        latest = await stub.ListCheckpoints(audit_pb2.ListCheckpointsRequest(), metadata=md)
        assert latest.checkpoints
        for c in latest.checkpoints:
            assert Checkpoint.parse(c.body).size == c.size

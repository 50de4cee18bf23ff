"""`modelreg audit export` against the running audit service and `modelreg audit verify`
on the bundle with only the public key: it verifies; a changed byte makes it fail with
a non-zero exit naming the item."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

from modelreg.auditlog.bundle import EVENTS, verify_bundle
from modelreg.auditlog.checkpoint import public_pem
from tests.helpers import run_cli, unique
from tests.integration.audit.conftest import TOKENS, Stack
from tests.integration.audit.test_checkpoints import settled


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MODELREG_AUDIT_ADDR": stack.endpoints.audit,
        "MODELREG_TOKEN": TOKENS["carol"],
        "COLUMNS": "250",
    }
    return run_cli("audit", *args, env=env)


async def test_export_then_verify_offline(stack: Stack, tmp_path: Path) -> None:
    ns = unique("ex")
    async with stack.client("alice") as alice:
        for i in range(3):
            await alice.catalog.register_model(f"{ns}/m{i}")
            await alice.catalog.update_model(f"{ns}/m{i}", description="changed")
            await alice.versioning.create_version(f"{ns}/m{i}", bump="major")
    await settled(stack)
    async with stack.client("carol") as carol:
        files = await carol.audit.export_audit(ns, model=f"{ns}/m1")
    keys = [stack.signer.public_key, stack.retired.public_key]
    report = verify_bundle(files, keys)
    # m1's catalog and versioning streams, every event of each: exported whole.
    assert report.events == 4 and report.whole_streams == 2 and report.partial_streams == 0
    assert {json.loads(line)["model"] for line in files[EVENTS].splitlines()} == {
        f"namespaces/{ns}/models/m1"
    }

    key = tmp_path / "audit.pub"
    key.write_text(public_pem(stack.signer.public_key))
    out = tmp_path / "bundle"
    exported = await asyncio.to_thread(cli, stack, "export", str(out), "--namespace", ns)
    assert exported.returncode == 0, exported.stderr
    verified = await asyncio.to_thread(cli, stack, "verify", str(out), "--public-key", str(key), "-o", "json")
    assert verified.returncode == 0, verified.stderr
    # The namespace, then per model: created, updated, version created and finalized.
    assert json.loads(verified.stdout)["events"] == 13
    events = out / EVENTS
    data = bytearray(events.read_bytes())
    data[data.index(b'"actor":"alice"') + 10] ^= 0x01
    events.write_bytes(bytes(data))
    tampered = await asyncio.to_thread(cli, stack, "verify", str(out), "--public-key", str(key))
    assert tampered.returncode == 11 and "events.jsonl line 1" in tampered.stderr, tampered.stderr

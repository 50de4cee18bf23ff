"""The SDK's and the CLI's `filter` on ListLineageRecords, against the real lineage
service: only matching records come back, across pages, and a bad filter is a clear
error naming its position."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import pytest

from modelreg.client import AsyncRegistry, Endpoints, InvalidArgument, Registry
from modelreg.runtime.host import ServiceHost
from tests.helpers import run_cli_async, unique
from tests.integration.lineage.conftest import Writer
from tests.integration.lineage.test_lineage_service import a_record


async def cli(host: ServiceHost, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs the CLI in a subprocess, off the event loop that serves lineage."""
    env = {**os.environ, "MODELREG_LINEAGE_ADDR": f"127.0.0.1:{host.port}", "COLUMNS": "200"}
    return await run_cli_async(*args, env=env, timeout=60)


async def test_sdk_and_cli_filters_return_only_the_matching_records(
    lineage_host: ServiceHost, writer: Writer
) -> None:
    namespace = unique("ns")
    created = await writer.create_versions([f"namespaces/{namespace}/models/m/versions/1"])
    uri = f"{namespace}/m/1"
    endpoints = Endpoints(lineage=f"127.0.0.1:{lineage_host.port}")
    async with AsyncRegistry(endpoints) as registry:
        registry.observe(created.encode())  # the version fact, as a versioning write hands it on
        for i in range(5):
            await registry.lineage.record_lineage(uri, a_record(f"{unique('r')}-{i}"))
        every = await registry.lineage.list_lineage_records(uri)
        assert len(every) == 5
        after = every[1].create_time.ToJsonString()
        later = f'create_time > "{after}"'
        found = await registry.lineage.list_lineage_records(uri, filter=later, page_size=1)
        assert [r.name for r in found] == [r.name for r in every[2:]]
        with pytest.raises(InvalidArgument) as error:
            await registry.lineage.list_lineage_records(uri, filter="superseded = maybe")
        assert "at position 13: expected true or false" in error.value.message

    def blocking() -> list[str]:
        with Registry(endpoints) as sync:
            records = sync.lineage.list_lineage_records(uri, filter=f"NOT {later}", page_size=1)
            return [r.name for r in records]

    # The service runs on this test's loop, so the blocking client runs in a thread.
    assert await asyncio.to_thread(blocking) == [r.name for r in every[:2]]

    host = lineage_host
    listed = await cli(host, "lineage", "records", uri, "--filter", later, "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert [r["name"] for r in json.loads(listed.stdout)] == [r.name for r in every[2:]]
    last = every[-1].create_time.ToJsonString()
    one = await cli(host, "lineage", "records", uri, "-f", f'create_time >= "{last}"', "-o", "json")
    assert [r["name"] for r in json.loads(one.stdout)] == [every[-1].name]  # a list of one
    table = await cli(host, "lineage", "records", uri, "-f", later)
    assert table.returncode == 0 and every[-1].name.rsplit("/", 1)[1] in table.stdout, table.stderr

    bad = await cli(host, "lineage", "records", uri, "--filter", "create_time < 3", "-o", "json")
    assert bad.returncode == 5, bad.stderr  # invalid argument
    assert "at position 14: expected an RFC 3339 timestamp" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr and not bad.stdout

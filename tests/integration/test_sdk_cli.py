"""The SDK and the CLI against the running catalog service."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import pytest

from modelreg.client import AlreadyExists, AsyncRegistry, Endpoints, InvalidArgument, NotFound, Registry
from modelreg.devstack.ports import free_port
from modelreg.runtime.host import ServiceHost
from tests.helpers import run_cli_async, unique


@pytest.fixture
def endpoints(catalog_host: ServiceHost) -> Endpoints:
    return Endpoints(catalog=f"127.0.0.1:{catalog_host.port}")


async def test_async_client_reads_its_own_writes_and_maps_errors(endpoints: Endpoints) -> None:
    ns = unique("sdk")
    async with AsyncRegistry(endpoints) as registry:
        created = await registry.catalog.register_model(f"{ns}/churn", description="d", tags={"a": "b"})
        assert registry.consistency_token
        assert (await registry.catalog.get_model(f"modelreg://{ns}/churn")) == created
        with pytest.raises(AlreadyExists):
            await registry.catalog.register_model(f"{ns}/churn")
        with pytest.raises(NotFound):
            await registry.catalog.get_model(f"{ns}/absent")
        with pytest.raises(InvalidArgument) as error:
            await registry.catalog.register_model(f"{ns}/big", description="x" * 70_000)
        assert error.value.field_violations[0][0] == "registered_model.description"


async def test_pipeline_steps_never_see_a_stale_read(endpoints: Endpoints) -> None:
    """Step A writes, hands its token to step B (another client), which reads at once."""
    ns = unique("pipe")
    async with AsyncRegistry(endpoints) as writer:
        for i in range(60):
            await writer.catalog.register_model(f"{ns}/m{i}")
            async with AsyncRegistry(endpoints) as reader:
                reader.observe(writer.consistency_token)
                assert (await reader.catalog.get_model(f"{ns}/m{i}")).name.endswith(f"/m{i}")
        async with AsyncRegistry(endpoints) as reader:
            reader.observe(writer.consistency_token)
            assert len(await reader.catalog.list_models(ns, page_size=7)) == 60


async def test_a_retried_write_with_the_same_request_id_has_one_effect(endpoints: Endpoints) -> None:
    ns = unique("retry")
    async with AsyncRegistry(endpoints) as registry:
        first = await registry.catalog.register_model(f"{ns}/m", request_id="same-key")
        again = await registry.catalog.register_model(f"{ns}/m", request_id="same-key")
        assert again == first


async def test_unavailable_is_retried_until_the_service_is_up(catalog_host: ServiceHost) -> None:
    from modelreg.catalog.main import spec

    port = free_port()
    late = ServiceHost(spec(), catalog_host.settings)

    async def start_late() -> None:
        await asyncio.sleep(0.4)
        await late.start(project=False, port=port)

    starter = asyncio.create_task(start_late())
    try:
        async with AsyncRegistry(Endpoints(catalog=f"127.0.0.1:{port}"), retries=6) as registry:
            created = await registry.catalog.register_model(f"{unique('late')}/m")
            assert created.etag == 'W/"1"'
    finally:
        await starter
        await late.stop()


async def test_sync_client(endpoints: Endpoints) -> None:
    # The service runs on this test's event loop, so the blocking client runs in a thread.
    def use_blocking_client() -> None:
        ns = unique("sync")
        with Registry(endpoints) as registry:
            created = registry.catalog.register_model(f"{ns}/m", tags={"k": "v"})
            assert registry.catalog.get_model(f"{ns}/m") == created
            assert [m.name for m in registry.catalog.list_models(ns)] == [created.name]

    await asyncio.to_thread(use_blocking_client)


async def cli(endpoints: Endpoints, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs the CLI in a subprocess, off the event loop that serves the catalog."""
    env = {**os.environ, "MODELREG_CATALOG_ADDR": endpoints.catalog, "COLUMNS": "200"}
    return await run_cli_async(*args, env=env, timeout=60)


async def test_cli_create_get_list_and_exit_codes(endpoints: Endpoints) -> None:
    ns = unique("cli")
    created = await cli(
        endpoints, "models", "create", f"{ns}/fraud", "-d", "Fraud model", "-t", "team=risk", "-o", "json"
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["tags"] == {"team": "risk"}

    shown = await cli(endpoints, "models", "get", f"{ns}/fraud")
    assert shown.returncode == 0 and "Fraud model" in shown.stdout and "team=risk" in shown.stdout

    listed = await cli(endpoints, "models", "list", ns, "-o", "json")
    assert [m["name"] for m in json.loads(listed.stdout)] == [f"namespaces/{ns}/models/fraud"]

    again = await cli(endpoints, "models", "create", f"{ns}/fraud")
    assert again.returncode == 4 and "ALREADY_EXISTS" in again.stderr
    missing = await cli(endpoints, "models", "get", f"{ns}/nope")
    assert missing.returncode == 3 and "NOT_FOUND" in missing.stderr
    bad = await cli(endpoints, "models", "create", f"{ns}/ok", "-t", "Bad Key=v")
    assert bad.returncode == 5 and "registered_model.tags" in bad.stderr

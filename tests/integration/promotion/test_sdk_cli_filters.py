"""The SDK's and the CLI's `filter` on ListTransitionRequests, ListPointerHistory and
ListAccessDenials, against the real promotion service: only matching items come back,
across pages, and a bad filter is a clear error naming its position."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest

from modelreg.client import AsyncRegistry, Endpoints, InvalidArgument, Registry
from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from modelreg.runtime.host import ServiceHost
from tests.helpers import run_cli_async
from tests.integration.promotion.conftest import Facts
from tests.integration.promotion.test_promotion_service import (
    approve,
    new_model,
    request,
    rpc_error,
    versions,
)


@dataclass
class Model:
    uri: str
    """`ns/model`, as SDK and CLI users write it."""
    namespace: str
    requests: list[pb.TransitionRequest]
    history: list[pb.PointerHistoryEntry]
    denials: list[pb.AccessDenial]


@pytest.fixture(scope="module")
async def model(promotion_host: ServiceHost, promotion_stub, facts: Facts) -> Model:
    name = new_model()
    namespace, model_id = name.split("/")[1], name.split("/")[3]
    await versions(facts, name, 1, 2, 3)
    first = await request(promotion_stub, name, ("PRODUCTION", 1))  # protected: waits for bob
    await approve(promotion_stub, first.name, "bob")
    await request(promotion_stub, name, ("STAGING", 1), who="bob")
    await request(promotion_stub, name, ("champion", 2))
    await request(promotion_stub, name, ("STAGING", 2))
    await request(promotion_stub, name, ("PRODUCTION", 2), who="root")  # stays pending
    await request(promotion_stub, name, ("STAGING", 3), who="bob")
    await rpc_error(request(promotion_stub, name, ("PRODUCTION", 3), who="victor"))  # a viewer
    await rpc_error(request(promotion_stub, name, ("STAGING", 3), who="victor"))
    pending = await request(promotion_stub, name, ("PRODUCTION", 3), who="bob")
    await rpc_error(approve(promotion_stub, pending.name, "alice"))  # an editor
    uri = f"{namespace}/{model_id}"
    async with client(promotion_host, "root") as registry:
        return Model(
            uri,
            namespace,
            await registry.promotion.list_transition_requests(uri),
            await registry.promotion.history(uri),
            await registry.promotion.list_access_denials(namespace),
        )


def client(host: ServiceHost, principal: str) -> AsyncRegistry:
    return AsyncRegistry(Endpoints(promotion=f"127.0.0.1:{host.port}"), bearer_token=f"t-{principal}")


def pointers(entry: pb.PointerHistoryEntry) -> set[str]:
    return {change.pointer for change in entry.changes}


async def test_sdk_filters_return_only_the_matching_items_across_pages(
    promotion_host: ServiceHost, model: Model
) -> None:
    by_alice = [r.name for r in model.requests if r.requester == "alice"]
    staging = [e.transition_request for e in model.history if "STAGING" in pointers(e)]
    by_victor = [(d.action, d.resource) for d in model.denials if d.principal == "victor"]
    # Each filter must drop something and keep several items, which pages of one then carry.
    for kept, every in ((by_alice, model.requests), (staging, model.history), (by_victor, model.denials)):
        assert 1 < len(kept) < len(every)
    async with client(promotion_host, "root") as registry:
        promotion = registry.promotion
        found = await promotion.list_transition_requests(
            model.uri, filter='requested_by = "alice"', page_size=1
        )
        assert [r.name for r in found] == by_alice
        entries = await promotion.history(model.uri, filter='pointer = "STAGING"', page_size=1)
        assert [e.transition_request for e in entries] == staging
        denials = await promotion.list_access_denials(
            model.namespace, filter='principal = "victor"', page_size=1
        )
        assert [(d.action, d.resource) for d in denials] == by_victor
        with pytest.raises(InvalidArgument) as error:
            await promotion.list_transition_requests(model.uri, filter="state < PENDING")
        assert "at position 6: expected an operator for state" in error.value.message

    def blocking() -> list[str]:
        with Registry(Endpoints(promotion=f"127.0.0.1:{promotion_host.port}"), bearer_token="t-bob") as sync:
            pending = sync.promotion.list_transition_requests(
                model.uri, filter="state = PENDING", page_size=1
            )
            return [r.name for r in pending]

    # The service runs on this test's loop, so the blocking client runs in a thread.
    expected = [r.name for r in model.requests if r.state == pb.TransitionRequest.STATE_PENDING]
    assert len(expected) > 1
    assert await asyncio.to_thread(blocking) == expected


async def cli(host: ServiceHost, principal: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs the CLI in a subprocess, off the event loop that serves promotion."""
    env = {
        **os.environ,
        "MODELREG_PROMOTION_ADDR": f"127.0.0.1:{host.port}",
        "MODELREG_TOKEN": f"t-{principal}",
        "COLUMNS": "200",
    }
    return await run_cli_async(*args, env=env, timeout=60)


async def cli_json(host: ServiceHost, principal: str, *args: str) -> list[dict[str, Any]]:
    result = await cli(host, principal, *args, "--output", "json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert isinstance(listed, list), listed  # a list even when one item matches
    return listed


async def test_cli_filter_output_json_lists_the_matching_items(
    promotion_host: ServiceHost, model: Model
) -> None:
    by_bob = [r.name for r in model.requests if r.requester == "bob"]
    found = await cli_json(
        promotion_host, "victor", "requests", model.uri, "--filter", 'requested_by = "bob"'
    )
    assert [r["name"] for r in found] == by_bob and 1 < len(by_bob) < len(model.requests)

    production = 'pointer = "PRODUCTION" AND applied_time >= "2026-01-01T00:00:00Z"'
    entries = await cli_json(promotion_host, "victor", "history", model.uri, "--filter", production)
    assert [e["transition_request"] for e in entries] == [
        e.transition_request for e in model.history if "PRODUCTION" in pointers(e)
    ]
    champion = await cli_json(promotion_host, "victor", "history", model.uri, "-f", 'pointer = "champion"')
    assert [e["changes"][0]["pointer"] for e in champion] == ["champion"]

    denials = await cli_json(
        promotion_host, "root", "denials", model.namespace, "--filter", 'action = "ApproveTransitionRequest"'
    )
    assert [(d["principal"], d["action"]) for d in denials] == [("alice", "ApproveTransitionRequest")]
    table = await cli(promotion_host, "root", "denials", model.namespace, "-f", 'principal = "victor"')
    assert table.returncode == 0 and "CreateTransitionRequest" in table.stdout, table.stderr
    assert "ApproveTransitionRequest" not in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("requests", "{uri}", "--filter", "state < PENDING"),
            "at position 6: expected an operator for state",
        ),
        (
            ("history", "{uri}", "--filter", "apply_time > 5"),
            "at position 13: expected an RFC 3339 timestamp",
        ),
        (("denials", "{namespace}", "-f", "principal = "), "at position 12: expected a value"),
    ],
)
async def test_cli_bad_filter_names_the_position_without_a_traceback(
    promotion_host: ServiceHost, model: Model, args: tuple[str, ...], message: str
) -> None:
    filled = [a.format(uri=model.uri, namespace=model.namespace) for a in args]
    result = await cli(promotion_host, "root", *filled, "--output", "json")
    assert result.returncode == 5, result.stderr  # invalid argument
    assert "INVALID_ARGUMENT" in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not result.stdout

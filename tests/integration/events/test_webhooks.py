"""Webhooks against the whole registry and a real local HTTP receiver: Standard Webhooks
signatures (and MLflow's headers), retries on 500 and 429 honouring Retry-After, none on
400, 410 disables, dead letters, redelivery with the same webhook-id, one slow endpoint
never delaying another, and the SSRF guard."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from modelreg.client import AsyncRegistry, InvalidArgument
from modelreg.client.webhooks import new_secret
from modelreg.events.domain import signing
from modelreg.gen.relay.v1 import webhooks_pb2 as pb
from tests import logscan
from tests.helpers import run_cli_async, unique
from tests.integration.events.conftest import TOKENS, Stack
from tests.integration.events.receiver import Answer, Receiver, receiving


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as server:
        yield server


@pytest.fixture
async def alice(stack: Stack) -> AsyncIterator[AsyncRegistry]:
    async with stack.client("alice") as client:
        yield client


async def subscribe(
    alice: AsyncRegistry, receiver: Receiver, path: str, **options: object
) -> tuple[str, str, str]:
    """A new namespace with model `m` and a webhook on it posting to `path`: (ns, name, secret)."""
    ns = unique("wh")
    await alice.catalog.register_model(f"{ns}/m")
    secret = logscan.register_secret(new_secret())
    webhook = await alice.webhooks.create(f"{ns}/hook", receiver.url(path), secret=secret, **options)  # type: ignore[arg-type]
    return ns, webhook.name, secret


async def eventually(condition: Callable[[], Awaitable[object]], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def logged(alice: AsyncRegistry, name: str, count: int) -> list[pb.WebhookDelivery]:
    """The delivery log of `name` once it holds `count` entries. The dispatcher writes an
    attempt's entry when the endpoint's answer is back, so after the receiver has seen the
    request: reading the log at once races that write."""
    entries: list[pb.WebhookDelivery] = []

    async def enough() -> bool:
        nonlocal entries
        entries = list(await alice.webhooks.deliveries(name))
        return len(entries) >= count

    await eventually(enough, f"{count} entries in the delivery log of {name}")
    return entries


def verify(received: object, secret: str) -> bool:
    r = received
    headers, body = r.headers, r.body  # type: ignore[attr-defined]
    return signing.verify(
        secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body, headers["webhook-signature"]
    )


async def test_a_delivery_is_signed_the_standard_webhooks_way_and_the_secret_is_never_returned(
    alice: AsyncRegistry, receiver: Receiver, stack: Stack
) -> None:
    ns, name, secret = await subscribe(alice, receiver, "/signed", mlflow_headers=True)
    await alice.catalog.update_model(f"{ns}/m", description="v2")
    await receiver.wait_for(lambda: len(receiver.at("/signed")) >= 1, what="the update's webhook")
    [request] = receiver.at("/signed")
    assert verify(request, secret)
    payload = json.loads(request.body)
    assert payload["type"] == "io.modelreg.model.updated.v1" and payload["timestamp"].endswith("Z")
    assert payload["data"]["model"] == f"namespaces/{ns}/models/m"
    assert payload["data"]["registered_model"]["description"] == "v2"
    # The webhook-id is the public event's id, which is the internal event's id.
    records = await stack.public_records(lambda rs: any(r.id == request.headers["webhook-id"] for r in rs))
    assert any(r.type == payload["type"] for r in records if r.id == request.headers["webhook-id"])
    # MLflow's headers, so an MLflow webhook receiver works unchanged.
    mlflow = signing.mlflow_signature(
        secret,
        request.headers["x-mlflow-delivery-id"],
        int(request.headers["x-mlflow-timestamp"]),
        request.body,
    )
    assert request.headers["x-mlflow-signature"] == mlflow
    # Write-only secret: never in an answer.
    for webhook in [await alice.webhooks.get(name), *await alice.webhooks.list_webhooks(ns)]:
        assert webhook.secret == "" and webhook.has_secret and secret not in str(webhook)
    [delivery] = await logged(alice, name, 1)
    assert (delivery.outcome, delivery.status_code, delivery.attempt) == ("delivered", 200, 1)
    assert delivery.event_id == request.headers["webhook-id"] and delivery.latency_ms > 0


async def test_a_webhook_deleted_and_created_again_starts_with_an_empty_delivery_log(
    alice: AsyncRegistry, receiver: Receiver
) -> None:
    """The delivery log is the subscription's: a new webhook of an old one's name lists none
    of the old one's attempts (it did before, as the log was keyed by the name alone)."""
    ns, name, _ = await subscribe(alice, receiver, "/first-life")
    await alice.catalog.update_model(f"{ns}/m", description="for the first subscription")
    [old] = await logged(alice, name, 1)
    await alice.webhooks.delete(name)
    again = await alice.webhooks.create(f"{ns}/hook", receiver.url("/second-life"), secret=new_secret())
    assert again.name == name
    assert list(await alice.webhooks.deliveries(name)) == []
    await alice.catalog.update_model(f"{ns}/m", description="for the second")
    await receiver.wait_for(lambda: len(receiver.at("/second-life")) >= 1, what="the second life's request")
    [new] = await logged(alice, name, 1)
    assert new.event_id == receiver.at("/second-life")[0].headers["webhook-id"] != old.event_id
    assert len(receiver.at("/first-life")) == 1


async def test_500_and_429_are_retried_honouring_retry_after_and_400_is_not(
    alice: AsyncRegistry, receiver: Receiver
) -> None:
    receiver.scripts["/flaky"] += [Answer(500), Answer(429, {"Retry-After": "1"}), Answer(200)]
    receiver.scripts["/picky"] += [Answer(400)]
    ns, flaky, secret = await subscribe(alice, receiver, "/flaky")
    await alice.webhooks.create(f"{ns}/picky", receiver.url("/picky"), secret=new_secret())
    await alice.catalog.update_model(f"{ns}/m", description="retry me")
    await receiver.wait_for(lambda: len(receiver.at("/flaky")) >= 3, what="three attempts")
    first, second, third = receiver.at("/flaky")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == third.headers["webhook-id"]
    assert all(verify(r, secret) for r in (first, second, third))
    assert third.at - second.at >= 1.0  # Retry-After: 1 (the backoff alone is 0.05-0.1 s)
    attempts = sorted(await logged(alice, flaky, 3), key=lambda d: d.attempt)
    assert [(d.attempt, d.status_code, d.outcome) for d in attempts] == [
        (1, 500, "retrying"),
        (2, 429, "retrying"),
        (3, 200, "delivered"),
    ]
    # 400: one attempt, logged as failed, never retried; the next event still goes out.
    await alice.catalog.update_model(f"{ns}/m", description="after the 400")
    await receiver.wait_for(lambda: len(receiver.at("/picky")) >= 2, what="the next event after a 400")
    picky = await logged(alice, f"{ns}/picky", 2)
    assert sorted((d.status_code, d.outcome) for d in picky) == [(200, "delivered"), (400, "failed")]
    assert len({r.headers["webhook-id"] for r in receiver.at("/picky")}) == 2


async def test_410_disables_the_subscription(alice: AsyncRegistry, receiver: Receiver) -> None:
    receiver.always["/gone"] = Answer(410)
    ns, name, _ = await subscribe(alice, receiver, "/gone")
    await alice.catalog.update_model(f"{ns}/m", description="anyone there?")
    await receiver.wait_for(lambda: len(receiver.at("/gone")) >= 1, what="the request answered 410")

    async def disabled() -> bool:
        return (await alice.webhooks.get(name)).state == pb.Webhook.STATE_DISABLED

    await eventually(disabled, "the subscription disabled")
    webhook = await alice.webhooks.get(name)
    assert webhook.state == pb.Webhook.STATE_DISABLED and "410" in webhook.disabled_reason
    await alice.catalog.update_model(f"{ns}/m", description="not sent")
    await alice.webhooks.test(name)  # a test request still goes out when asked
    assert len(receiver.at("/gone")) == 2
    [delivery, *_] = await alice.webhooks.deliveries(name)
    assert delivery.event_type == "io.modelreg.webhook.test.v1"


async def test_a_failing_endpoint_ends_in_dead_letters_and_redeliver_sends_the_same_webhook_id(
    alice: AsyncRegistry, receiver: Receiver
) -> None:
    receiver.always["/down"] = Answer(503)
    ns, name, _ = await subscribe(alice, receiver, "/down")
    await alice.catalog.update_model(f"{ns}/m", description="lost")
    await receiver.wait_for(lambda: len(receiver.at("/down")) >= 3, what="three attempts (the maximum)")

    async def dead() -> list[pb.WebhookDelivery]:
        return await alice.webhooks.deliveries(name, dead_letters_only=True)

    await eventually(dead, "a dead letter")
    [letter] = await dead()
    assert (letter.outcome, letter.attempt, letter.status_code) == ("dead", 3, 503)
    # The endpoint is back: redeliver from the dead letter's position, same webhook-id.
    del receiver.always["/down"]
    moved = await alice.webhooks.redeliver(name, from_position=letter.position)
    assert moved.cursor == letter.position - 1
    await receiver.wait_for(lambda: len(receiver.at("/down")) >= 4, what="the redelivery")
    again = receiver.at("/down")[3]
    assert again.headers["webhook-id"] == letter.event_id

    async def moved_on() -> bool:  # the cursor moves once the endpoint's answer is in
        return (await alice.webhooks.get(name)).cursor >= letter.position

    await eventually(moved_on, "the cursor past the redelivered event")


async def test_a_slow_endpoint_does_not_delay_another_subscription(
    alice: AsyncRegistry, receiver: Receiver
) -> None:
    receiver.always["/slow"] = Answer(200, delay_s=1.5)
    ns, _, _ = await subscribe(alice, receiver, "/slow")
    await alice.webhooks.create(f"{ns}/fast", receiver.url("/fast"), secret=new_secret())
    for i in range(3):
        await alice.catalog.update_model(f"{ns}/m", description=f"d{i}")
    await receiver.wait_for(lambda: len(receiver.at("/fast")) >= 3, what="the fast endpoint's three")
    assert len(receiver.at("/slow")) < 3  # the slow one needs at least 4.5 s for its three
    await receiver.wait_for(lambda: len(receiver.at("/slow")) >= 3, what="the slow endpoint's three")
    fast_ids = [r.headers["webhook-id"] for r in receiver.at("/fast")]
    assert [r.headers["webhook-id"] for r in receiver.at("/slow")] == fast_ids  # same events, same order


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://127.0.0.2:8080/hook",  # loopback, but not the allow-listed 127.0.0.1
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://localhost:8080/hook",  # a hostname resolving to loopback
        "http://[::ffff:10.0.0.1]/hook",
    ],
)
async def test_private_loopback_and_link_local_targets_are_refused(alice: AsyncRegistry, url: str) -> None:
    ns = unique("ssrf")
    await alice.catalog.register_model(f"{ns}/m")
    with pytest.raises(InvalidArgument) as refused:
        await alice.webhooks.create(f"{ns}/hook", url, secret=new_secret())
    assert "webhook.url" in str(refused.value) and "refused" in str(refused.value)
    assert await alice.webhooks.list_webhooks(ns) == []


async def test_the_cli_manages_a_webhook_end_to_end(
    alice: AsyncRegistry, receiver: Receiver, stack: Stack
) -> None:
    ns = unique("whcli")
    await alice.catalog.register_model(f"{ns}/m")
    secret = logscan.register_secret(new_secret())
    env = {
        **os.environ,
        "MODELREG_EVENTS_ADDR": stack.endpoints.events,
        "MODELREG_TOKEN": TOKENS["alice"],
        "MODELREG_WEBHOOK_SECRET": secret,
        "COLUMNS": "250",
    }

    async def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return await run_cli_async("webhooks", *args, env=env, timeout=60)

    async def ok(*args: str) -> object:
        done = await cli(*args, "-o", "json")
        assert done.returncode == 0, done.stderr
        assert secret not in done.stdout + done.stderr
        return json.loads(done.stdout)

    # Each CLI run is a process start (seconds on a loaded machine): few, each checking much.
    created = await ok(
        "create", f"{ns}/cd", receiver.url("/cli"), "--type", "model.updated", "--model", f"{ns}/m"
    )
    assert created["event_types"] == ["io.modelreg.model.updated.v1"] and created["has_secret"]  # type: ignore[index]
    tested = await ok("test", f"{ns}/cd")
    assert tested["outcome"] == "delivered" and verify(receiver.at("/cli")[-1], secret)  # type: ignore[index]
    await alice.catalog.update_model(f"{ns}/m", description="via cli")
    await receiver.wait_for(lambda: len(receiver.at("/cli")) >= 2, what="the update")
    [delivered, _] = await logged(alice, f"{ns}/cd", 2)
    assert delivered.event_type == "io.modelreg.model.updated.v1"
    await ok("redeliver", f"{ns}/cd", "--from", str(delivered.position))
    await receiver.wait_for(lambda: len(receiver.at("/cli")) >= 3, what="the redelivery")
    assert receiver.at("/cli")[2].headers["webhook-id"] == receiver.at("/cli")[1].headers["webhook-id"]
    updated = await ok("update", f"{ns}/cd", "--disable")
    assert updated["state"] == "STATE_DISABLED"  # type: ignore[index]
    await ok("delete", f"{ns}/cd")
    assert await alice.webhooks.list_webhooks(ns) == []
    bad = await cli("create", f"{ns}/x", "http://10.0.0.7/hook")
    assert bad.returncode != 0 and "refused" in bad.stderr

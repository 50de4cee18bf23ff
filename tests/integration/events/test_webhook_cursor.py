"""Where a new webhook's cursor starts: after everything its creator had seen.

The creator's consistency token makes CreateWebhook wait until the relay has folded the
creator's writes into the outbox; but the outbox is numbered (`position`) only when the
publisher has produced it to the public topic. A subscription that started at the newest
*published* position received the events folded, yet not yet published, when it was
created: a client that created model M and then a webhook got M's `model.created`.

These tests hold the window open deterministically, on a registry of their own: a relay
whose publisher cannot run (the test holds its advisory lock) until the webhook exists, or
whose projector does not run at all.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import asyncpg
import grpc
import pytest

from modelreg.client import AsyncRegistry
from modelreg.client.errors import DeadlineExceeded
from modelreg.client.webhooks import new_secret
from modelreg.eventlog import TOKEN_METADATA_KEY, ConsistencyToken
from modelreg.gen.relay.v1 import webhooks_pb2 as pb
from modelreg.gen.relay.v1 import webhooks_pb2_grpc
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests import logscan
from tests.helpers import environment, unique, with_own_topics
from tests.integration.events.conftest import AUTH, TOKENS, WEBHOOKS, Stack, registry_specs
from tests.integration.events.receiver import Receiver, receiving

CREATED = "io.modelreg.model.created.v1"
UPDATED = "io.modelreg.model.updated.v1"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as server:
        yield server


class Held:
    """A registry of its own (own topics, fresh schemas) whose relay is held back."""

    def __init__(self, stack: Stack, lock: asyncpg.Connection) -> None:
        self.stack, self._lock = stack, lock

    @property
    def relay_schema(self) -> str:
        return self.stack.hosts["events"].spec.schema

    def client(self, *, retries: int = 6) -> AsyncRegistry:
        return AsyncRegistry(self.stack.endpoints, bearer_token=TOKENS["alice"], retries=retries)

    async def release_publisher(self) -> None:
        await self._lock.execute("SELECT pg_advisory_unlock_all()")


@asynccontextmanager
async def held_registry(
    settings: Settings, blobs: Path, *, relay_projects: bool = True, publisher_held: bool = False
) -> AsyncIterator[Held]:
    """The whole registry on topics of its own while the block runs. `publisher_held`: the
    test holds the publisher's advisory lock, so the outbox fills but nothing in it is
    published (numbered) until `release_publisher()`. `relay_projects=False`: the relay
    folds nothing at all."""
    from modelreg.events.main import spec as events

    own = with_own_topics(settings, "cursor")
    suffix = uuid.uuid4().hex[:6]
    relay_schema = f"ev_cur_{suffix}"
    lock = await asyncpg.connect(settings.pg_dsn)
    try:
        if publisher_held:
            # The publisher's lock (OutboxPublisher._lock_name); the test checks it took.
            await lock.execute(
                "SELECT pg_advisory_lock(hashtext($1))", f"modelreg-outbox-publisher-{relay_schema}"
            )
        async with AsyncExitStack() as hosts_:
            hosts: dict[str, ServiceHost] = {}
            with environment({**AUTH, **WEBHOOKS}):  # read when the specs are made and the hosts start
                specs = {**registry_specs(suffix, blobs), "events": events(relay_schema)}
                for name, spec in specs.items():
                    host = ServiceHost(spec, own)  # type: ignore[arg-type]
                    hosts_.push_async_callback(host.stop)
                    await host.start(port=0, project=relay_projects or name != "events")
                    hosts[name] = host
            yield Held(Stack(own, hosts), lock)
    finally:
        await lock.close()


async def until(settings: Settings, query: str, *args: object, what: str, timeout: float = 30.0) -> None:
    """Until `query` (one boolean) is true."""
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        deadline = time.monotonic() + timeout
        while not await conn.fetchval(query, *args):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_a_webhook_created_after_its_model_gets_the_next_change_and_not_the_creation(
    settings: Settings, tmp_path: Path, receiver: Receiver
) -> None:
    async with held_registry(settings, tmp_path, publisher_held=True) as held:
        async with held.client() as alice:
            ns = unique("cur")
            model = f"namespaces/{ns}/models/m"
            await alice.catalog.register_model(f"{ns}/m")
            # The SDK passes the catalog's token: the relay has folded the creation into its
            # outbox before CreateWebhook runs. The publisher is held: not published yet.
            webhook = await alice.webhooks.create(
                f"{ns}/hook", receiver.url("/cursor"), secret=logscan.register_secret(new_secret())
            )
            conn = await asyncpg.connect(settings.pg_dsn)
            try:
                positions = await conn.fetch(
                    f'SELECT position FROM "{held.relay_schema}".outbox WHERE subject = $1 AND type = $2',
                    model,
                    CREATED,
                )
            finally:
                await conn.close()
            assert [r["position"] for r in positions] == [None], "the creation must be folded, unpublished"
            await held.release_publisher()
            await alice.catalog.update_model(f"{ns}/m", description="after the webhook")
            await receiver.wait_for(lambda: len(receiver.at("/cursor")) >= 1, what="the update's webhook")
            # Published in order, delivered in order: the creation, had it counted, came first.
            types = [json.loads(r.body)["type"] for r in receiver.at("/cursor")]
            assert types[0] == UPDATED and CREATED not in types, types
            assert json.loads(receiver.at("/cursor")[0].body)["data"]["model"] == model
            # Once past the update, the cursor has passed every row it skipped, and forgets them.
            s = f'"{held.relay_schema}"'
            await until(
                settings,
                f"SELECT c.position >= o.position AND cardinality(c.skipped) = 0 FROM {s}.webhook_cursors c,"
                f" {s}.outbox o WHERE c.name = $1 AND o.subject = $2 AND o.type = $3",
                webhook.name,
                model,
                UPDATED,
                what="the cursor past the update, with nothing left to skip",
            )
            # A redelivery from the start is the operator's explicit choice: it does get the creation.
            await alice.webhooks.redeliver(webhook.name, from_position=1)
            await receiver.wait_for(
                lambda: any(json.loads(r.body)["type"] == CREATED for r in receiver.at("/cursor")),
                what="the creation, redelivered",
            )


async def test_create_webhook_waits_for_the_creators_token_on_the_relayed_topics(
    settings: Settings, tmp_path: Path
) -> None:
    """A relay that has not folded the creator's writes answers DEADLINE_EXCEEDED, as every
    service does for a token it cannot reach in time, and runs nothing."""
    async with held_registry(settings, tmp_path, relay_projects=False) as held:
        async with held.client(retries=0) as alice:
            ns = unique("cur")
            await alice.catalog.register_model(f"{ns}/m")
            with pytest.raises(DeadlineExceeded, match="consistency token"):
                await alice.webhooks.create(f"{ns}/hook", "http://127.0.0.1:9/x", secret=new_secret())


async def test_bad_tokens_on_create_webhook(stack: Stack) -> None:
    """A token that is not one is INVALID_ARGUMENT; one naming an offset nobody reaches is
    DEADLINE_EXCEEDED; a token on a topic the relay does not fold is not waited for."""
    ns = unique("cur")
    channel = grpc.aio.insecure_channel(stack.endpoints.events)
    stub = webhooks_pb2_grpc.WebhookServiceStub(channel)
    request = pb.CreateWebhookRequest(
        parent=f"namespaces/{ns}",
        webhook_id="hook",
        webhook=pb.Webhook(url="http://127.0.0.1:9/x", secret=new_secret()),
        request_id=str(uuid.uuid4()),
    )
    catalog = stack.settings.kafka.topic("modelreg.catalog.v1")
    auth = ("authorization", f"Bearer {TOKENS['alice']}")
    try:
        cases = [
            ("not-a-token", grpc.StatusCode.INVALID_ARGUMENT),
            (ConsistencyToken({(catalog, 0): 10**12}).encode(), grpc.StatusCode.DEADLINE_EXCEEDED),
            (ConsistencyToken({(catalog, 10**6): 1}).encode(), grpc.StatusCode.DEADLINE_EXCEEDED),
        ]
        for token, code in cases:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.CreateWebhook(request, metadata=[auth, (TOKEN_METADATA_KEY, token)], timeout=10)
            assert raised.value.code() == code, (token, raised.value.details())
        foreign = ConsistencyToken({("not.folded.here", 0): 10**12}).encode()
        created = await stub.CreateWebhook(
            request, metadata=[auth, (TOKEN_METADATA_KEY, foreign)], timeout=10
        )
        assert created.name == f"namespaces/{ns}/webhooks/hook"
    finally:
        await channel.close()


async def test_a_webhook_deleted_and_created_again_starts_afresh(stack: Stack, receiver: Receiver) -> None:
    """The new subscription of a reused name does not resume the deleted one's cursor: it gets
    neither what happened while there was none nor anything before."""
    async with stack.client("alice") as alice:
        ns = unique("again")
        await alice.catalog.register_model(f"{ns}/m")
        secret = logscan.register_secret(new_secret())
        first = await alice.webhooks.create(f"{ns}/hook", receiver.url("/again"), secret=secret)
        await alice.catalog.update_model(f"{ns}/m", description="one")
        await receiver.wait_for(
            lambda: len(receiver.at("/again")) >= 1, what="the first subscription's event"
        )
        await alice.webhooks.delete(first.name)
        await alice.catalog.update_model(f"{ns}/m", description="while deleted")
        again = await alice.webhooks.create(f"{ns}/hook", receiver.url("/again"), secret=secret)
        assert again.name == first.name
        await alice.catalog.update_model(f"{ns}/m", description="three")
        await receiver.wait_for(lambda: len(receiver.at("/again")) >= 2, what="the new subscription's event")
        described = [
            json.loads(r.body)["data"]["registered_model"]["description"] for r in receiver.at("/again")
        ]
        assert described == ["one", "three"], described

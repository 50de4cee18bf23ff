"""The fuzz suite: requests generated from the method descriptors of every method of the five
services (56 of catalog, versioning, lineage and promotion, and audit's 4) and of the events
relay's WebhookService, sent to them running (tests.fleet, and the relay over the fleet's
topics), in concurrent batches.

Checks, for every request: never INTERNAL or UNKNOWN, never a hang past the client's
deadline. For every batch: a service that refused every request of the batch kept its log
end (the relay's own topic too), and a schema fed only by such services kept every row count
and checkpoint (not the relay's: its publisher and webhook dispatcher write there in the
background). At the end: every service and the relay still serving, nothing quarantined, and
a write still round-trips.

MODELREG_FUZZ_EXAMPLES sets the number of requests (5,000 in `make test`, about 75 per method
and 100 batches with their before/after snapshots; `make fuzz` runs 100,000).
The status histogram is printed at the end.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from modelreg.eventlog import TOKEN_METADATA_KEY
from modelreg.gen.catalog.v1 import catalog_pb2 as cat
from modelreg.gen.lineage.v1 import lineage_pb2 as lin
from modelreg.gen.promotion.v1 import promotion_pb2 as pro
from modelreg.gen.relay.v1 import webhooks_pb2 as hook
from modelreg.gen.relay.v1 import webhooks_pb2_grpc
from modelreg.gen.versioning.v1 import versioning_pb2 as ver
from modelreg.runtime.host import ServiceHost
from tests.fleet import ADMIN, SERVICES, Fleet, feeds_of
from tests.fuzz.generate import Pool, Request, path_of, requests
from tests.helpers import environment, serving, unique, violations
from tests.integration.promotion.conftest import promotion_env

REQUESTS = int(os.environ.get("MODELREG_FUZZ_EXAMPLES", "5000"))
BATCH = 50
DEADLINE_S = 30.0
STREAM_IDLE_S = 0.25
"""A server stream that sends nothing for this long is open and well (a live Watch)."""

Code = grpc.StatusCode
MAY_WRITE = {"OK", "OK (stream open)", "ABORTED", "UNAVAILABLE", "CANCELLED", "DEADLINE_EXCEEDED"}
"""Outcomes after which a request may have appended; every other one must have changed nothing."""
DEFECTS = {"INTERNAL", "UNKNOWN", "HANG"}

RELAY = ("events",)
"""Beside the fleet: the events relay (WebhookService), on the fleet's topics and database."""
RELAY_ENV = {
    # Loopback may be subscribed (the pool's webhook posts to the discard port, refused at once);
    # every other private address is refused. Few, quick attempts: deliveries fail by design.
    "MODELREG_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    "MODELREG_WEBHOOK_MAX_ATTEMPTS": "2",
    "MODELREG_WEBHOOK_BACKOFF_S": "0.05",
    "MODELREG_WEBHOOK_TIMEOUT_S": "2",
}

histogram: Counter[str] = Counter()
by_method: dict[str, Counter[str]] = {}
defects: list[str] = []
elapsed: list[float] = []
timings: dict[str, float] = {"requests": 0.0, "snapshots": 0.0}


@pytest.fixture(scope="module")
async def relay(fleet: Fleet) -> AsyncIterator[ServiceHost]:
    """The events relay over the fleet's topics, in a schema of its own; its channel and stub join
    the fleet's for this module (the fleet's snapshots take its log end with `also=RELAY`)."""
    from modelreg.events.main import spec

    with promotion_env(), environment(RELAY_ENV):
        async with serving(spec(f"events_fuzz_{unique('s').replace('-', '_')}"), fleet.settings) as host:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
            fleet.channels["events"] = channel
            fleet.stubs["events"] = webhooks_pb2_grpc.WebhookServiceStub(channel)
            try:
                yield host
            finally:
                del fleet.channels["events"], fleet.stubs["events"]
                await channel.close()


@pytest.fixture(scope="module")
async def pool(fleet: Fleet, relay: ServiceHost) -> Pool:
    """Resources that exist, and real tokens, for the generator to mix in."""
    found = Pool()
    ns = unique("ns")
    created = fleet.stubs["catalog"].CreateRegisteredModel(
        cat.CreateRegisteredModelRequest(
            parent=f"namespaces/{ns}",
            registered_model_id=unique("m"),
            registered_model=cat.RegisteredModel(description="fuzz", tags={"team": "a"}),
        ),
        metadata=ADMIN,
    )
    model = (await created).name
    token = dict(await created.trailing_metadata())[TOKEN_METADATA_KEY]
    await fleet.stubs["catalog"].CreateRegisteredModel(
        cat.CreateRegisteredModelRequest(
            parent=f"namespaces/{ns}", registered_model_id=unique("m"), registered_model=cat.RegisteredModel()
        ),
        metadata=ADMIN,
    )
    created_version = fleet.stubs["versioning"].CreateModelVersion(
        ver.CreateModelVersionRequest(
            parent=model, model_version=ver.ModelVersion(metrics={"acc": 0.9}), bump=ver.BUMP_MAJOR
        ),
        metadata=[*ADMIN, (TOKEN_METADATA_KEY, token)],
    )
    version = (await created_version).name
    found.tokens.append(dict(await created_version.trailing_metadata())[TOKEN_METADATA_KEY])
    found.tokens.append(token)
    found.strings += [f"namespaces/{ns}", model, version, ns, model.rsplit("/", 1)[1], model + "@latest"]
    listed = await fleet.stubs["catalog"].ListRegisteredModels(
        cat.ListRegisteredModelsRequest(parent=f"namespaces/{ns}", page_size=1), metadata=ADMIN
    )
    if listed.next_page_token:
        found.tokens.append(listed.next_page_token)
    with _ignored():
        record = await fleet.stubs["lineage"].RecordLineage(
            lin.RecordLineageRequest(
                parent=version,
                record=lin.LineageRecord(
                    datasets=[lin.Dataset(uri="s3://d/train", digest="sha256:" + "a" * 64)]
                ),
            ),
            metadata=[*ADMIN, *((TOKEN_METADATA_KEY, t) for t in found.tokens[:1])],
        )
        found.strings.append(record.name)
    with _ignored():
        request = await fleet.stubs["promotion"].CreateTransitionRequest(
            pro.CreateTransitionRequestRequest(
                parent=model,
                transition_request=pro.TransitionRequest(
                    moves=[pro.PointerMove(pointer="champion", version=1)]
                ),
            ),
            metadata=[*ADMIN, *((TOKEN_METADATA_KEY, t) for t in found.tokens[:1])],
        )
        found.strings.append(request.name)
    with _ignored():
        from modelreg.client.webhooks import new_secret

        webhook = await fleet.stubs["events"].CreateWebhook(
            hook.CreateWebhookRequest(
                parent=f"namespaces/{ns}",
                webhook_id=unique("hook"),
                webhook=hook.Webhook(
                    url="http://127.0.0.1:9/hook",
                    event_types=["io.modelreg.version.created.v1"],
                    secret=new_secret(),
                ),
            ),
            metadata=ADMIN,
        )
        found.strings += [webhook.name, webhook.url, "io.modelreg.version.created.v1", new_secret()]
    return found


class _ignored:
    """The pool is a help to the generator, not a test: a setup call that fails is skipped."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: object, tb: object) -> bool:
        return isinstance(error, grpc.aio.AioRpcError)


async def _stream(request: Request) -> AsyncIterator[bytes]:
    for message in request.messages:
        yield message


async def send(fleet: Fleet, request: Request) -> str:
    """The outcome of one request: a status name, or HANG."""
    channel = fleet.channels[request.service]
    path = path_of(request.method)
    raw = {"request_serializer": None, "response_deserializer": None}
    metadata = list(request.metadata)
    try:
        if request.method.client_streaming:
            await channel.stream_unary(path, **raw)(_stream(request), metadata=metadata, timeout=DEADLINE_S)
        elif request.method.server_streaming:
            call = channel.unary_stream(path, **raw)(
                request.messages[0], metadata=metadata, timeout=DEADLINE_S
            )
            for _ in range(5):
                try:
                    item = await asyncio.wait_for(call.read(), STREAM_IDLE_S)
                except TimeoutError:
                    call.cancel()
                    return "OK (stream open)"
                if item is grpc.aio.EOF:
                    break
            call.cancel()
        else:
            await channel.unary_unary(path, **raw)(request.messages[0], metadata=metadata, timeout=DEADLINE_S)
        return "OK"
    except grpc.aio.AioRpcError as error:
        code = error.code()
        if code == Code.DEADLINE_EXCEEDED and "consistency token" not in (error.details() or ""):
            return "HANG"  # the client's deadline passed: the server never answered
        if code == Code.CANCELLED and request.method.server_streaming:
            return "OK (stream open)"
        return code.name


@pytest.mark.timeout(1800)  # 5,000 requests take 1-3 minutes, depending on the machine's load
@settings(
    max_examples=max(1, REQUESTS // BATCH),
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a failing batch is reported with its requests, not shrunk
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
async def test_generated_requests(fleet: Fleet, pool: Pool, data: st.DataObject) -> None:
    batch = [data.draw(requests(pool, ADMIN)) for _ in range(BATCH)]
    started = time.monotonic()
    before = await fleet.snapshot(also=RELAY)
    sent = time.monotonic()
    outcomes = await asyncio.gather(*(send(fleet, r) for r in batch))
    answered = time.monotonic()
    after = await fleet.snapshot(also=RELAY)
    elapsed.append(time.monotonic() - started)
    timings["requests"] += answered - sent
    timings["snapshots"] += (sent - started) + (time.monotonic() - answered)
    touched = set()
    for request, outcome in zip(batch, outcomes, strict=True):
        histogram[outcome] += 1
        by_method.setdefault(path_of(request.method), Counter())[outcome] += 1
        if outcome in DEFECTS:
            defects.append(f"{outcome}: {request.describe()}")
        if outcome in MAY_WRITE:
            touched.add(request.service)
    for service in (*SERVICES, *RELAY):
        if service not in touched and after.log_ends[service] != before.log_ends[service]:
            refused = [
                f"{path_of(r.method)} {o}"
                for r, o in zip(batch, outcomes, strict=True)
                if r.service == service
            ]
            defects.append(f"APPENDED: {service}'s log grew while every request to it was refused: {refused}")
    for schema, feeds in feeds_of(fleet.hosts).items():
        if not touched & set(feeds) and after.rows[schema] != before.rows[schema]:
            changed = {
                t: (before.rows[schema].get(t), n)
                for t, n in after.rows[schema].items()
                if before.rows[schema].get(t) != n
            }
            defects.append(f"CHANGED: {schema} rows changed while its feeds refused everything: {changed}")


async def test_what_fuzzing_the_relay_found(fleet: Fleet, pool: Pool, relay: ServiceHost) -> None:
    """Regression cases. A Webhook.state number no State names was taken as ACTIVE (OK, and on an
    update a silent re-enable): now INVALID_ARGUMENT on webhook.state, changing nothing, wherever
    the state is read (a create, an update whose mask names it); an update not naming it ignores it."""
    from modelreg.client.webhooks import new_secret

    stub = fleet.stubs["events"]
    # A subscription of its own: the generated requests may have deleted or changed the pool's.
    parent = next(s for s in pool.strings if "/webhooks/" in s).split("/webhooks/")[0]
    own = hook.Webhook(url="http://127.0.0.1:9/own", secret=new_secret())
    name = (
        await stub.CreateWebhook(
            hook.CreateWebhookRequest(parent=parent, webhook_id=unique("hook"), webhook=own), metadata=ADMIN
        )
    ).name
    before = await fleet.snapshot(also=RELAY)

    async def refused(call: Any) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == Code.INVALID_ARGUMENT, raised.value
        assert violations(raised.value) == ["webhook.state"], raised.value.details()

    bad = hook.Webhook(url="http://127.0.0.1:9/x", secret=new_secret(), state=99)  # type: ignore[arg-type]
    await refused(
        stub.CreateWebhook(
            hook.CreateWebhookRequest(parent=parent, webhook_id=unique("hook"), webhook=bad), metadata=ADMIN
        )
    )
    bad.name = name
    await refused(
        stub.UpdateWebhook(
            hook.UpdateWebhookRequest(webhook=bad, update_mask=FieldMask(paths=["state"])), metadata=ADMIN
        )
    )
    after = await fleet.snapshot(also=RELAY)
    assert after.log_ends["events"] == before.log_ends["events"]
    current = await stub.GetWebhook(hook.GetWebhookRequest(name=name), metadata=ADMIN)
    updated = await stub.UpdateWebhook(
        hook.UpdateWebhookRequest(
            webhook=hook.Webhook(name=name, url=current.url, state=99),  # type: ignore[arg-type]
            update_mask=FieldMask(paths=["url"]),
        ),
        metadata=ADMIN,
    )
    assert updated.state == current.state


async def test_the_fleet_survived_and_the_histogram(
    fleet: Fleet, relay: ServiceHost, capsys: pytest.CaptureFixture[str]
) -> None:
    total = sum(histogram.values())
    with capsys.disabled():
        print(
            f"\nfuzz: {total} requests over {len(by_method)} methods in {sum(elapsed):.1f}s of batches "
            f"({timings['requests']:.1f}s answering, {timings['snapshots']:.1f}s snapshots)"
        )
        for outcome, count in histogram.most_common():
            print(f"  {outcome:<20} {count}")
        if os.environ.get("MODELREG_FUZZ_VERBOSE"):
            for method, counts in sorted(by_method.items()):
                print(f"  {method}: {dict(counts)}")
    assert total >= REQUESTS - BATCH, "run the whole module: the generated requests come first"
    assert not defects, "\n".join(defects[:50])
    assert await fleet.quarantined() == 0
    assert relay.pool is not None
    assert await relay.pool.fetchval(f'SELECT count(*) FROM "{relay.spec.schema}".quarantine') == 0
    for service in (*SERVICES, *RELAY):
        health = health_pb2_grpc.HealthStub(fleet.channels[service])
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    # The projectors still fold: a write is answered (it waits for its own verdict).
    created = await fleet.stubs["catalog"].CreateRegisteredModel(
        cat.CreateRegisteredModelRequest(
            parent=f"namespaces/{unique('ns')}",
            registered_model_id=unique("m"),
            registered_model=cat.RegisteredModel(),
        ),
        metadata=ADMIN,
        timeout=30,
    )
    assert (
        await fleet.stubs["catalog"].GetRegisteredModel(
            cat.GetRegisteredModelRequest(name=created.name), metadata=ADMIN
        )
    ).name == created.name

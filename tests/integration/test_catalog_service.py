"""The catalog slice through gRPC on a running service, against Tansu and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest

from modelreg.eventlog import TOKEN_METADATA_KEY, ConsistencyToken, Verdict
from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from modelreg.gen.catalog.v1 import catalog_pb2_grpc
from modelreg.runtime.host import ServiceHost
from tests.helpers import count_rows, log_envelopes, unique, violations


def create_request(namespace: str, model: str, **fields: Any) -> pb.CreateRegisteredModelRequest:
    return pb.CreateRegisteredModelRequest(
        parent=f"namespaces/{namespace}",
        registered_model_id=model,
        registered_model=pb.RegisteredModel(**fields),
    )


async def create(stub, namespace: str, model: str, **fields: object):
    call = stub.CreateRegisteredModel(create_request(namespace, model, **fields))
    created = await call
    metadata = dict(await call.trailing_metadata())
    return created, metadata[TOKEN_METADATA_KEY]


async def test_create_then_get_and_list(catalog_stub) -> None:
    ns = unique("ns")
    created, token = await create(catalog_stub, ns, "churn", description="# Churn", tags={"team": "growth"})
    assert created.name == f"namespaces/{ns}/models/churn"
    assert created.state == pb.RegisteredModel.STATE_ACTIVE
    assert created.created_by == "anonymous"
    assert created.etag == 'W/"1"'
    assert created.create_time.seconds > 0

    got = await catalog_stub.GetRegisteredModel(
        pb.GetRegisteredModelRequest(name=created.name), metadata=[(TOKEN_METADATA_KEY, token)]
    )
    assert got == created

    listed = await catalog_stub.ListRegisteredModels(
        pb.ListRegisteredModelsRequest(parent=f"namespaces/{ns}")
    )
    assert [m.name for m in listed.registered_models] == [created.name]
    assert listed.next_page_token == ""


async def test_get_unknown_model_is_not_found(catalog_stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await catalog_stub.GetRegisteredModel(pb.GetRegisteredModelRequest(name="namespaces/x/models/nope"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 13, 0])
async def test_pages_are_disjoint_and_complete(catalog_stub, page_size: int) -> None:
    ns = unique("ns")
    names = sorted(f"model-{i:02d}" for i in range(13))
    await asyncio.gather(*(create(catalog_stub, ns, n) for n in names))
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await catalog_stub.ListRegisteredModels(
            pb.ListRegisteredModelsRequest(parent=f"namespaces/{ns}", page_size=page_size, page_token=token)
        )
        pages += 1
        assert len(page.registered_models) <= (page_size or 50)
        seen.extend(m.name.rsplit("/", 1)[1] for m in page.registered_models)
        token = page.next_page_token
        if not token:
            break
    assert seen == names  # ordered, no duplicates, nothing missing
    assert pages == (-(-len(names) // page_size) if page_size else 1)


async def test_bad_page_token_is_invalid_argument(catalog_stub) -> None:
    for token in ["garbage!", "djEvb3RoZXIvbTE="]:  # undecodable; a token of another namespace
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await catalog_stub.ListRegisteredModels(
                pb.ListRegisteredModelsRequest(parent="namespaces/mine", page_token=token)
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in error.value.details()


BAD_REQUESTS = [
    (
        "parent",
        pb.CreateRegisteredModelRequest(registered_model_id="m", registered_model=pb.RegisteredModel()),
    ),
    ("parent", create_request("Upper", "m")),
    (
        "parent",
        pb.CreateRegisteredModelRequest(
            parent="projects/x", registered_model_id="m", registered_model=pb.RegisteredModel()
        ),
    ),
    ("registered_model_id", create_request("ns", "")),
    ("registered_model_id", create_request("ns", "-leading-dash")),
    ("registered_model_id", create_request("ns", "x" * 129)),
    ("registered_model_id", create_request("ns", "has/slash")),
    ("registered_model", pb.CreateRegisteredModelRequest(parent="namespaces/ns", registered_model_id="m")),
    ("registered_model.description", create_request("ns", "big", description="x" * (64 * 1024 + 1))),
    ("registered_model.tags", create_request("ns", "tags", tags={"Bad Key": "v"})),
    ("registered_model.tags", create_request("ns", "tags2", tags={f"k{i}": "v" for i in range(65)})),
    (
        "request_id",
        pb.CreateRegisteredModelRequest(
            parent="namespaces/ns",
            registered_model_id="r",
            registered_model=pb.RegisteredModel(),
            request_id="r" * 129,
        ),
    ),
]


@pytest.mark.parametrize(("field", "request_"), BAD_REQUESTS, ids=[f for f, _ in BAD_REQUESTS])
async def test_bad_input_names_the_field_and_appends_nothing(
    catalog_stub,
    catalog_host: ServiceHost,
    field: str,
    request_: pb.CreateRegisteredModelRequest,
) -> None:
    # Model streams only: the sentinel's fresh namespace is registered implicitly, one more event.
    model_outcomes = "SELECT count(*) FROM catalog.event_outcomes WHERE stream LIKE '%/models/%'"
    before = await count_rows(catalog_host.settings.pg_dsn, model_outcomes)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await catalog_stub.CreateRegisteredModel(request_)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(field)
    assert violations(error.value)[0].startswith(field)

    # A sentinel write proves the projector caught up; nothing from the bad call may be in the log.
    await create(catalog_stub, unique("sentinel"), "s")
    after = await count_rows(catalog_host.settings.pg_dsn, model_outcomes)
    assert after == before + 1
    bad_stream = f"{request_.parent}/models/{request_.registered_model_id}"
    envelopes = await log_envelopes(catalog_host.settings.kafka, catalog_host.topic("modelreg.catalog.v1"))
    assert all(e.stream != bad_stream for e in envelopes)


async def test_read_your_writes_200_times(catalog_stub) -> None:
    ns = unique("ryw")
    for i in range(200):
        created, token = await create(catalog_stub, ns, f"m{i}")
        got = await catalog_stub.GetRegisteredModel(
            pb.GetRegisteredModelRequest(name=created.name), metadata=[(TOKEN_METADATA_KEY, token)]
        )
        assert got.name == created.name


async def test_token_ahead_of_the_projector_waits_then_fails_clearly(
    catalog_stub,
    catalog_host: ServiceHost,
) -> None:
    _, token = await create(catalog_stub, unique("ns"), "m")
    ahead = ConsistencyToken(
        {tp: offset + 1000 for tp, offset in ConsistencyToken.decode(token).required.items()}
    )
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await catalog_stub.GetRegisteredModel(
            pb.GetRegisteredModelRequest(name="namespaces/a/models/b"),
            metadata=[(TOKEN_METADATA_KEY, ahead.encode())],
        )
    waited = time.monotonic() - started
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "consistency token" in error.value.details()
    assert waited >= catalog_host.settings.token_wait_s * 0.9


@pytest.mark.parametrize("ahead_first", [True, False], ids=["ahead-first", "ahead-last"])
async def test_every_consistency_token_header_is_waited_for(
    catalog_stub, catalog_host: ServiceHost, ahead_first: bool
) -> None:
    # Two writes, two tokens, sent as two headers: the call waits for both, whatever their order.
    first, projected = await create(catalog_stub, unique("ns"), "a")
    _, second = await create(catalog_stub, unique("ns"), "b")
    ahead = ConsistencyToken(
        {tp: offset + 1000 for tp, offset in ConsistencyToken.decode(second).required.items()}
    ).encode()
    both = [(TOKEN_METADATA_KEY, projected), (TOKEN_METADATA_KEY, second)]
    got = await catalog_stub.GetRegisteredModel(pb.GetRegisteredModelRequest(name=first.name), metadata=both)
    assert got.name == first.name
    headers = [(TOKEN_METADATA_KEY, ahead), (TOKEN_METADATA_KEY, projected)]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await catalog_stub.GetRegisteredModel(
            pb.GetRegisteredModelRequest(name=first.name), metadata=headers if ahead_first else headers[::-1]
        )
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "consistency token" in error.value.details()


async def test_malformed_token_is_invalid_argument(catalog_stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await catalog_stub.GetRegisteredModel(
            pb.GetRegisteredModelRequest(name="namespaces/a/models/b"),
            metadata=[(TOKEN_METADATA_KEY, "%%%")],
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert TOKEN_METADATA_KEY in error.value.details()


async def test_retried_request_id_returns_the_original_result(catalog_stub, catalog_host) -> None:
    ns = unique("idem")
    request = create_request(ns, "m", description="first")
    request.request_id = unique("req")
    first = await catalog_stub.CreateRegisteredModel(request)
    request.registered_model.description = "second attempt, same key"
    again = await catalog_stub.CreateRegisteredModel(request)
    assert again == first
    assert (
        await count_rows(
            catalog_host.settings.pg_dsn,
            "SELECT count(*) FROM catalog.event_outcomes WHERE stream = $1",
            first.name,
        )
        == 1
    )


async def test_concurrent_creates_of_one_model_across_replicas(catalog_host: ServiceHost) -> None:
    """Two replicas (separate command executors) race; the log picks exactly one winner."""
    from modelreg.catalog.main import spec

    replica = ServiceHost(spec(), catalog_host.settings)
    await replica.start(project=False, port=0)
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{catalog_host.port}") as a,
            grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as b,
        ):
            stubs = [catalog_pb2_grpc.CatalogServiceStub(a), catalog_pb2_grpc.CatalogServiceStub(b)]
            ns = unique("race")
            for i in range(15):
                results = await asyncio.gather(
                    *(s.CreateRegisteredModel(create_request(ns, f"m{i}")) for s in stubs),
                    return_exceptions=True,
                )
                ok = [r for r in results if isinstance(r, pb.RegisteredModel)]
                errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
                assert len(ok) == 1, results
                assert [e.code() for e in errors] == [grpc.StatusCode.ALREADY_EXISTS]
                accepted = await count_rows(
                    catalog_host.settings.pg_dsn,
                    "SELECT count(*) FROM catalog.event_outcomes WHERE stream = $1 AND verdict = $2",
                    f"namespaces/{ns}/models/m{i}",
                    Verdict.ACCEPTED.value,
                )
                assert accepted == 1
    finally:
        await replica.stop()

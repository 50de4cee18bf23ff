"""Update with field masks, etags under concurrency, archive/restore/delete, namespaces,
and replay of the whole catalog topic, through gRPC against Tansu and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from modelreg.catalog.adapters.projection import CatalogProjection
from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from modelreg.gen.catalog.v1 import catalog_pb2_grpc
from modelreg.gen.common.v1.signature_pb2 import Signature, TensorSpec
from modelreg.projections.replay import BOOKKEEPING_TABLES, digest, rebuild
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.helpers import count_rows, log_envelopes, unique

Code = grpc.StatusCode
TABLES = [*CatalogProjection.read_model_tables, *BOOKKEEPING_TABLES]


def full_model() -> pb.RegisteredModel:
    model = pb.RegisteredModel(
        description="# Churn\nPredicts churn.",
        annotations="trained on 2025 data",
        tags={"team": "growth", "env": "prod"},
        owners=["alice", "group:ml"],
        signature=Signature(
            inputs=[TensorSpec(name="features", dtype=TensorSpec.DATA_TYPE_FLOAT32, shape=[-1, 12])],
            outputs=[TensorSpec(name="p", dtype=TensorSpec.DATA_TYPE_FLOAT64, shape=[-1])],
        ),
    )
    model.properties["acc"].double_value = 0.91
    model.properties["epochs"].int_value = 12
    model.properties["calibrated"].bool_value = True
    model.properties["trained_at"].timestamp_value.FromDatetime(datetime(2025, 12, 1, 8, 30, tzinfo=UTC))
    model.properties["framework"].string_value = "torch"
    return model


async def create(stub, ns: str, model: str, body: pb.RegisteredModel | None = None) -> pb.RegisteredModel:
    return await stub.CreateRegisteredModel(
        pb.CreateRegisteredModelRequest(
            parent=f"namespaces/{ns}",
            registered_model_id=model,
            registered_model=body or pb.RegisteredModel(),
        )
    )


async def fails(code: grpc.StatusCode, call) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == code, error.value.details()
    return error.value.details() or ""


@pytest.fixture
async def authenticated(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[dict[str, object]]:
    """A second API replica that requires bearer tokens (alice, bob); the main host projects."""
    from modelreg.catalog.main import spec

    monkeypatch.setenv("MODELREG_AUTH_TOKENS", "ta=alice,tb=bob")
    replica = ServiceHost(spec(), settings)
    await replica.start(project=False, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
            yield {
                "stub": catalog_pb2_grpc.CatalogServiceStub(channel),
                "alice": [("authorization", "Bearer ta")],
                "bob": [("authorization", "Bearer tb")],
            }
    finally:
        await replica.stop()


async def test_create_round_trips_every_field_and_defaults_owners_to_the_creator(catalog_stub) -> None:
    ns = unique("full")
    created = await create(catalog_stub, ns, "churn", full_model())
    expected = full_model()
    for field in ("description", "annotations", "tags", "owners", "signature", "properties"):
        assert getattr(created, field) == getattr(expected, field), field
    bare = await create(catalog_stub, ns, "bare")
    assert list(bare.owners) == ["anonymous"]
    got = await catalog_stub.GetRegisteredModel(pb.GetRegisteredModelRequest(name=created.name))
    assert got == created


async def test_update_changes_only_masked_fields_and_bumps_etag_time_and_actor(authenticated) -> None:
    stub, alice, bob = authenticated["stub"], authenticated["alice"], authenticated["bob"]
    ns = unique("upd")
    created = await stub.CreateRegisteredModel(
        pb.CreateRegisteredModelRequest(
            parent=f"namespaces/{ns}", registered_model_id="churn", registered_model=full_model()
        ),
        metadata=alice,
    )
    assert (created.created_by, created.updated_by, created.etag) == ("alice", "alice", 'W/"1"')

    body = pb.RegisteredModel(
        name=created.name,
        description="must be ignored: not in the mask",
        annotations="re-reviewed",
        tags={"team": "risk", "ignored": "x"},
        etag=created.etag,
    )
    body.properties["acc"].int_value = 1
    updated = await stub.UpdateRegisteredModel(
        pb.UpdateRegisteredModelRequest(
            registered_model=body,
            update_mask=FieldMask(
                paths=["annotations", "tags.team", "tags.env", "properties.acc", "create_time"]
            ),
        ),
        metadata=bob,
    )
    assert updated.description == created.description
    assert updated.annotations == "re-reviewed"
    assert dict(updated.tags) == {"team": "risk"}  # env removed: named but absent from the request
    assert updated.properties["acc"] == pb.PropertyValue(int_value=1)
    assert updated.properties["epochs"] == created.properties["epochs"]
    assert (updated.signature, updated.owners) == (created.signature, created.owners)
    assert (updated.etag, updated.created_by, updated.updated_by) == ('W/"2"', "alice", "bob")
    assert updated.create_time == created.create_time
    assert updated.update_time.ToDatetime() > created.update_time.ToDatetime()

    # No mask: every field set in the body. `*`: every updatable field, cleared when unset.
    implied = await stub.UpdateRegisteredModel(
        pb.UpdateRegisteredModelRequest(
            registered_model=pb.RegisteredModel(name=created.name, owners=["carol"])
        ),
        metadata=bob,
    )
    assert (list(implied.owners), implied.annotations) == (["carol"], "re-reviewed")
    replaced = await stub.UpdateRegisteredModel(
        pb.UpdateRegisteredModelRequest(
            registered_model=pb.RegisteredModel(name=created.name, description="only this"),
            update_mask=FieldMask(paths=["*"]),
        ),
        metadata=bob,
    )
    assert replaced.description == "only this"
    assert (replaced.annotations, dict(replaced.tags), len(replaced.properties), list(replaced.owners)) == (
        "",
        {},
        0,
        [],
    )
    assert not replaced.HasField("signature")
    assert replaced.etag == 'W/"4"'


async def test_update_events_carry_the_new_values_and_the_mask(
    catalog_stub, catalog_host: ServiceHost
) -> None:
    ns = unique("evt")
    created = await create(catalog_stub, ns, "m", full_model())
    await catalog_stub.UpdateRegisteredModel(
        pb.UpdateRegisteredModelRequest(
            registered_model=pb.RegisteredModel(name=created.name, tags={"new": "1"}),
            update_mask=FieldMask(paths=["tags.new"]),
        )
    )
    envelopes = await log_envelopes(catalog_host.settings.kafka, catalog_host.topic("modelreg.catalog.v1"))
    namespace_events = [e for e in envelopes if e.stream == f"namespaces/{ns}"]
    assert [e.WhichOneof("payload") for e in namespace_events] == ["namespace_created"]
    assert namespace_events[0].namespace_created.namespace.implicit
    [update] = [e for e in envelopes if e.stream == created.name and e.HasField("registered_model_updated")]
    assert update.type == "modelreg.catalog.v1.RegisteredModelUpdated"
    assert list(update.registered_model_updated.update_mask.paths) == ["tags"]
    assert dict(update.registered_model_updated.registered_model.tags) == {
        "team": "growth",
        "env": "prod",
        "new": "1",
    }
    assert update.registered_model_updated.registered_model.description == ""  # not part of the change


BAD_UPDATES = [
    ("update_mask", ["colour"], pb.RegisteredModel(description="x")),
    ("update_mask", ["tags.Bad Key"], pb.RegisteredModel()),
    ("update_mask", ["description.length"], pb.RegisteredModel()),
    ("update_mask", ["*", "description"], pb.RegisteredModel()),
    ("update_mask", [], pb.RegisteredModel()),
    ("registered_model.description", ["description"], pb.RegisteredModel(description="x" * (64 * 1024 + 1))),
    ("registered_model.annotations", [], pb.RegisteredModel(annotations="x" * (64 * 1024 + 1))),
    ("registered_model.owners", ["owners"], pb.RegisteredModel(owners=["a", "a"])),
    ("registered_model.properties", ["properties"], pb.RegisteredModel(properties={"p": pb.PropertyValue()})),
    (
        "registered_model.properties",
        ["properties"],
        pb.RegisteredModel(properties={"p": pb.PropertyValue(double_value=float("inf"))}),
    ),
    (
        "registered_model.signature.inputs[0].dtype",
        ["signature"],
        pb.RegisteredModel(signature=Signature(inputs=[TensorSpec(name="x")])),
    ),
    ("registered_model.etag", ["description"], pb.RegisteredModel(description="x", etag="nonsense")),
]


@pytest.mark.parametrize(("field", "paths", "body"), BAD_UPDATES, ids=[f"{f}-{p}" for f, p, _ in BAD_UPDATES])
async def test_bad_updates_name_the_field_and_append_nothing(
    catalog_stub, catalog_host: ServiceHost, field: str, paths: list[str], body: pb.RegisteredModel
) -> None:
    created = await create(catalog_stub, unique("bad"), "m")
    body.name = created.name
    request = pb.UpdateRegisteredModelRequest(registered_model=body)
    if paths:
        request.update_mask.paths.extend(paths)
    details = await fails(Code.INVALID_ARGUMENT, catalog_stub.UpdateRegisteredModel(request))
    assert details.startswith(field), details
    assert (
        await count_rows(
            catalog_host.settings.pg_dsn,
            "SELECT count(*) FROM catalog.event_outcomes WHERE stream = $1",
            created.name,
        )
        == 1
    )


async def test_concurrent_updates_with_one_etag_have_exactly_one_winner(catalog_stub, catalog_host) -> None:
    """Through two replicas, so both the in-process queue and the log's revision check are in play."""
    from modelreg.catalog.main import spec

    replica = ServiceHost(spec(), catalog_host.settings)
    await replica.start(project=False, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
            stubs = [catalog_stub, catalog_pb2_grpc.CatalogServiceStub(channel)]
            created = await create(catalog_stub, unique("etag"), "m")
            calls = [
                stubs[i % 2].UpdateRegisteredModel(
                    pb.UpdateRegisteredModelRequest(
                        registered_model=pb.RegisteredModel(
                            name=created.name, description=f"v{i}", etag=created.etag
                        ),
                        update_mask=FieldMask(paths=["description"]),
                    )
                )
                for i in range(8)
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
            winners = [r for r in results if isinstance(r, pb.RegisteredModel)]
            losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
            assert len(winners) == 1, results
            assert [e.code() for e in losers] == [Code.ABORTED] * 7
            got = await catalog_stub.GetRegisteredModel(pb.GetRegisteredModelRequest(name=created.name))
            assert (got.description, got.etag) == (winners[0].description, 'W/"2"')

            # Without an etag nothing is lost: every update lands, serialised by the log.
            await asyncio.gather(
                *(
                    stubs[i % 2].UpdateRegisteredModel(
                        pb.UpdateRegisteredModelRequest(
                            registered_model=pb.RegisteredModel(name=created.name, tags={f"k{i}": str(i)}),
                            update_mask=FieldMask(paths=[f"tags.k{i}"]),
                        )
                    )
                    for i in range(8)
                )
            )
            got = await catalog_stub.GetRegisteredModel(pb.GetRegisteredModelRequest(name=created.name))
            assert dict(got.tags) == {f"k{i}": str(i) for i in range(8)}
            assert got.etag == 'W/"10"'
    finally:
        await replica.stop()


async def test_archive_restore_delete_lifecycle(catalog_stub, catalog_host: ServiceHost) -> None:
    ns = unique("life")
    created = await create(catalog_stub, ns, "m", pb.RegisteredModel(description="d"))
    name = created.name
    stub = catalog_stub

    def update(description: str, etag: str = ""):
        return stub.UpdateRegisteredModel(
            pb.UpdateRegisteredModelRequest(
                registered_model=pb.RegisteredModel(name=name, description=description, etag=etag),
                update_mask=FieldMask(paths=["description"]),
            )
        )

    await fails(
        Code.FAILED_PRECONDITION, stub.RestoreRegisteredModel(pb.RestoreRegisteredModelRequest(name=name))
    )
    await fails(
        Code.ABORTED, stub.ArchiveRegisteredModel(pb.ArchiveRegisteredModelRequest(name=name, etag='W/"9"'))
    )
    details = await fails(
        Code.INVALID_ARGUMENT,
        stub.ArchiveRegisteredModel(pb.ArchiveRegisteredModelRequest(name=name, etag="W/x")),
    )
    assert details.startswith("etag")

    archived = await stub.ArchiveRegisteredModel(
        pb.ArchiveRegisteredModelRequest(name=name, etag=created.etag)
    )
    assert (archived.state, archived.etag) == (pb.RegisteredModel.STATE_ARCHIVED, 'W/"2"')
    assert "archived" in await fails(Code.FAILED_PRECONDITION, update("nope"))
    await fails(
        Code.FAILED_PRECONDITION, stub.ArchiveRegisteredModel(pb.ArchiveRegisteredModelRequest(name=name))
    )
    listed = await stub.ListRegisteredModels(pb.ListRegisteredModelsRequest(parent=f"namespaces/{ns}"))
    assert [m.state for m in listed.registered_models] == [pb.RegisteredModel.STATE_ARCHIVED]

    restored = await stub.RestoreRegisteredModel(pb.RestoreRegisteredModelRequest(name=name))
    assert restored.state == pb.RegisteredModel.STATE_ACTIVE
    assert (await update("again", restored.etag)).description == "again"

    await fails(
        Code.ABORTED,
        stub.DeleteRegisteredModel(pb.DeleteRegisteredModelRequest(name=name, etag=restored.etag)),
    )
    deleted = await stub.DeleteRegisteredModel(
        pb.DeleteRegisteredModelRequest(name=name, reason="superseded by v2")
    )
    assert deleted.state == pb.RegisteredModel.STATE_DELETED

    await fails(Code.NOT_FOUND, stub.GetRegisteredModel(pb.GetRegisteredModelRequest(name=name)))
    shown = await stub.GetRegisteredModel(pb.GetRegisteredModelRequest(name=name, show_deleted=True))
    assert shown == deleted
    listed = await stub.ListRegisteredModels(pb.ListRegisteredModelsRequest(parent=f"namespaces/{ns}"))
    assert list(listed.registered_models) == []
    listed = await stub.ListRegisteredModels(
        pb.ListRegisteredModelsRequest(parent=f"namespaces/{ns}", show_deleted=True)
    )
    assert [m.name for m in listed.registered_models] == [name]

    assert "reserved" in await fails(Code.ALREADY_EXISTS, create(stub, ns, "m"))
    for call in (
        update("x"),
        stub.ArchiveRegisteredModel(pb.ArchiveRegisteredModelRequest(name=name)),
        stub.RestoreRegisteredModel(pb.RestoreRegisteredModelRequest(name=name)),
        stub.DeleteRegisteredModel(pb.DeleteRegisteredModelRequest(name=name)),
    ):
        await fails(Code.NOT_FOUND, call)
    for call in (
        stub.ArchiveRegisteredModel(pb.ArchiveRegisteredModelRequest(name=f"namespaces/{ns}/models/never")),
        stub.UpdateRegisteredModel(
            pb.UpdateRegisteredModelRequest(
                registered_model=pb.RegisteredModel(name=f"namespaces/{ns}/models/never", description="x")
            )
        ),
    ):
        await fails(Code.NOT_FOUND, call)

    envelopes = await log_envelopes(catalog_host.settings.kafka, catalog_host.topic("modelreg.catalog.v1"))
    kinds = [e.WhichOneof("payload") for e in envelopes if e.stream == name]
    assert kinds == [
        "registered_model_created",
        "registered_model_archived",
        "registered_model_restored",
        "registered_model_updated",
        "registered_model_deleted",
    ]
    reasons = [
        e.registered_model_deleted.reason
        for e in envelopes
        if e.stream == name and e.HasField("registered_model_deleted")
    ]
    assert reasons == ["superseded by v2"]


async def test_retried_update_request_id_has_one_effect(catalog_stub, catalog_host: ServiceHost) -> None:
    created = await create(catalog_stub, unique("idem"), "m")
    request = pb.UpdateRegisteredModelRequest(
        registered_model=pb.RegisteredModel(name=created.name, tags={"n": "1"}),
        update_mask=FieldMask(paths=["tags"]),
        request_id=unique("req"),
    )
    first = await catalog_stub.UpdateRegisteredModel(request)
    again = await catalog_stub.UpdateRegisteredModel(request)
    assert again == first
    assert first.etag == 'W/"2"'


async def test_namespaces(catalog_stub) -> None:
    explicit = unique("nsa")
    made = await catalog_stub.CreateNamespace(
        pb.CreateNamespaceRequest(namespace_id=explicit, namespace=pb.Namespace(description="team A"))
    )
    assert (made.name, made.description, made.implicit, made.created_by) == (
        f"namespaces/{explicit}",
        "team A",
        False,
        "anonymous",
    )
    await fails(
        Code.ALREADY_EXISTS, catalog_stub.CreateNamespace(pb.CreateNamespaceRequest(namespace_id=explicit))
    )
    assert (
        await fails(Code.INVALID_ARGUMENT, catalog_stub.CreateNamespace(pb.CreateNamespaceRequest()))
    ).startswith("namespace_id")

    implicit = unique("nsb")
    await create(catalog_stub, implicit, "first")
    got = await catalog_stub.GetNamespace(pb.GetNamespaceRequest(name=f"namespaces/{implicit}"))
    assert got.implicit
    await create(catalog_stub, implicit, "second")  # the namespace is not created twice
    await fails(
        Code.ALREADY_EXISTS, catalog_stub.CreateNamespace(pb.CreateNamespaceRequest(namespace_id=implicit))
    )
    await fails(
        Code.NOT_FOUND, catalog_stub.GetNamespace(pb.GetNamespaceRequest(name="namespaces/none-such"))
    )

    names: list[str] = []
    token = ""
    while True:
        page = await catalog_stub.ListNamespaces(pb.ListNamespacesRequest(page_size=2, page_token=token))
        names += [n.name for n in page.namespaces]
        token = page.next_page_token
        if not token:
            break
    assert names == sorted(set(names))
    assert {f"namespaces/{explicit}", f"namespaces/{implicit}"} <= set(names)


async def test_replay_from_offset_zero_reproduces_the_catalog_tables(
    catalog_stub, catalog_host: ServiceHost
) -> None:
    """Run last in this module: by now the topic holds every kind of catalog event."""
    ns = unique("replay")
    created = await create(catalog_stub, ns, "m", full_model())
    await catalog_stub.ArchiveRegisteredModel(pb.ArchiveRegisteredModelRequest(name=created.name))
    await catalog_stub.DeleteRegisteredModel(pb.DeleteRegisteredModelRequest(name=created.name, reason="r"))
    archived = await create(catalog_stub, ns, "archived")
    await catalog_stub.ArchiveRegisteredModel(pb.ArchiveRegisteredModelRequest(name=archived.name))
    await create(catalog_stub, ns, "sentinel")  # the live projector has folded everything before it

    shadow = unique("catalog_shadow_")
    pool = await asyncpg.create_pool(catalog_host.settings.pg_dsn, min_size=1, max_size=2)
    try:
        topic = catalog_host.topic("modelreg.catalog.v1")
        stats = await rebuild(
            pool, schema=shadow, topic=topic, handler=CatalogProjection(), kafka=catalog_host.settings.kafka
        )
        assert stats.records > 0
        async with pool.acquire() as conn:
            kinds = await conn.fetch(f'SELECT DISTINCT state FROM "{shadow}".registered_models')
            assert {r["state"] for r in kinds} == {"active", "archived", "deleted"}
            assert await digest(conn, "catalog", TABLES) == await digest(conn, shadow, TABLES)
    finally:
        await pool.execute(f'DROP SCHEMA IF EXISTS "{shadow}" CASCADE')
        await pool.close()


async def test_a_record_that_does_not_fit_is_skipped_not_wedging_the_projector(
    catalog_stub, catalog_host: ServiceHost
) -> None:
    """An update for a model that never existed, appended by hand at ANY revision: the fold
    accepts it (the rule knows nothing of payloads) but the read model must skip it."""
    from modelreg.eventlog import ANY_REVISION, GENESIS_HASH, ConsistencyToken, EventContext, build_envelope
    from modelreg.gen.catalog.v1 import events_pb2

    stream = f"namespaces/{unique('odd')}/models/ghost"
    envelope = build_envelope(
        stream=stream,
        payload_field="registered_model_archived",
        payload=events_pb2.RegisteredModelArchived(name=stream),
        expected_revision=ANY_REVISION,
        prev_hash=GENESIS_HASH,
        source="test",
        context=EventContext(actor="tool"),
    )
    assert catalog_host.log is not None and catalog_host.progress is not None
    position = await catalog_host.log.append(catalog_host.topic("modelreg.catalog.v1"), envelope)
    assert await catalog_host.progress.wait_for(ConsistencyToken.after([position]).required, 10.0)
    await fails(Code.NOT_FOUND, catalog_stub.GetRegisteredModel(pb.GetRegisteredModelRequest(name=stream)))
    await create(catalog_stub, unique("after"), "m")  # the projector is still folding

"""Display names: free-form, unique among a namespace's live models, renamable, searchable
and orderable; recorded in the catalog's own events (RegisteredModelCreated / Updated)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from tests.helpers import log_envelopes, unique, violations


def create(ns: str, model: str, display_name: str) -> pb.CreateRegisteredModelRequest:
    return pb.CreateRegisteredModelRequest(
        parent=f"namespaces/{ns}",
        registered_model_id=model,
        registered_model=pb.RegisteredModel(display_name=display_name),
    )


def rename(ns: str, model: str, display_name: str) -> pb.UpdateRegisteredModelRequest:
    return pb.UpdateRegisteredModelRequest(
        registered_model=pb.RegisteredModel(
            name=f"namespaces/{ns}/models/{model}", display_name=display_name
        ),
        update_mask=FieldMask(paths=["display_name"]),
    )


async def test_display_names_are_unique_per_namespace_renamable_and_freed_by_delete(
    catalog_stub, settings
) -> None:
    ns = unique("dn")
    a = await catalog_stub.CreateRegisteredModel(create(ns, "a", "Churn Model"))
    assert a.display_name == "Churn Model"
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await catalog_stub.CreateRegisteredModel(create(ns, "b", "Churn Model"))
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "display name 'Churn Model' is taken by namespaces/" in (taken.value.details() or "")
    # Another namespace may use it.
    await catalog_stub.CreateRegisteredModel(create(unique("dn"), "a", "Churn Model"))

    # Two renames racing for one name: exactly one wins.
    await catalog_stub.CreateRegisteredModel(create(ns, "b", "B"))
    await catalog_stub.CreateRegisteredModel(create(ns, "c", "C"))
    results = await asyncio.gather(
        catalog_stub.UpdateRegisteredModel(rename(ns, "b", "Winner")),
        catalog_stub.UpdateRegisteredModel(rename(ns, "c", "Winner")),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(refused) == 1 and refused[0].code() == grpc.StatusCode.ALREADY_EXISTS

    renamed = await catalog_stub.UpdateRegisteredModel(rename(ns, "a", "Churn Model v2"))
    assert renamed.display_name == "Churn Model v2"
    await catalog_stub.CreateRegisteredModel(create(ns, "d", "Churn Model"))  # the old one is free
    await catalog_stub.DeleteRegisteredModel(
        pb.DeleteRegisteredModelRequest(name=f"namespaces/{ns}/models/d")
    )
    await catalog_stub.CreateRegisteredModel(create(ns, "e", "Churn Model"))  # freed by the delete

    found = await catalog_stub.ListRegisteredModels(
        pb.ListRegisteredModelsRequest(
            parent=f"namespaces/{ns}", filter='display_name LIKE "Churn%"', order_by="display_name desc"
        )
    )
    assert [(m.name.rsplit("/", 1)[1], m.display_name) for m in found.registered_models] == [
        ("a", "Churn Model v2"),
        ("e", "Churn Model"),
    ]
    # Paged by display name: the keyset token follows the display name.
    seen, token = [], ""
    while True:
        page = await catalog_stub.ListRegisteredModels(
            pb.ListRegisteredModelsRequest(
                parent=f"namespaces/{ns}", order_by="display_name", page_size=1, page_token=token
            )
        )
        seen += [m.display_name for m in page.registered_models]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen) and len(seen) == 4

    envelopes = await log_envelopes(settings.kafka, settings.kafka.topic("modelreg.catalog.v1"))
    updates = [
        e.registered_model_updated
        for e in envelopes
        if e.WhichOneof("payload") == "registered_model_updated"
        and e.registered_model_updated.registered_model.name == f"namespaces/{ns}/models/a"
    ]
    assert [list(u.update_mask.paths) for u in updates] == [["display_name"]]
    assert updates[0].registered_model.display_name == "Churn Model v2"


@pytest.mark.parametrize("bad", [" padded", "line\nbreak", "x" * 257])
async def test_a_bad_display_name_is_invalid_argument_on_the_field(catalog_stub, bad: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await catalog_stub.CreateRegisteredModel(create(unique("dn"), "m", bad))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(refused.value) == ["registered_model.display_name"]

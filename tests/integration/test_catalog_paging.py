"""ListRegisteredModels and ListNamespaces keep the paging contract (tests/integration/paging.py)."""

from __future__ import annotations

from typing import Any

from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from tests.helpers import unique
from tests.integration.paging import (
    Lister,
    assert_every_item_once_in_order,
    assert_garbled_tokens_rejected,
    assert_inserts_between_pages_skip_and_repeat_nothing,
    assert_token_bound_to_its_query,
    walk,
)


async def create(stub, ns: str, model: str) -> str:
    created = await stub.CreateRegisteredModel(
        pb.CreateRegisteredModelRequest(
            parent=f"namespaces/{ns}", registered_model_id=model, registered_model=pb.RegisteredModel()
        )
    )
    return str(created.name)


def models(stub, ns: str, **query: Any) -> Lister:
    async def lister(page_size: int, page_token: str) -> tuple[list[str], str]:
        page = await stub.ListRegisteredModels(
            pb.ListRegisteredModelsRequest(
                parent=f"namespaces/{ns}", page_size=page_size, page_token=page_token, **query
            )
        )
        return [m.name for m in page.registered_models], page.next_page_token

    return lister


async def test_list_registered_models_pages(catalog_stub) -> None:
    ns = unique("ns")
    names = [await create(catalog_stub, ns, f"m-{i}") for i in range(7)]
    await create(catalog_stub, ns, "z-other")
    by_name = models(catalog_stub, ns, filter="name LIKE 'm-%'")
    newest = models(catalog_stub, ns, filter="name LIKE 'm-%'", order_by="create_time desc")
    await assert_every_item_once_in_order(by_name, names)
    await assert_every_item_once_in_order(newest, names[::-1])
    await assert_token_bound_to_its_query(
        by_name,
        [
            models(catalog_stub, unique("ns"), filter="name LIKE 'm-%'"),
            models(catalog_stub, ns),
            models(catalog_stub, ns, filter="name LIKE 'm-%'", order_by="update_time"),
            models(catalog_stub, ns, filter="name LIKE 'm-%'", show_deleted=True),
        ],
    )
    await assert_garbled_tokens_rejected(newest)

    for lister, suffix in ((by_name, "a"), (newest, "b")):
        before = [name for page in await walk(lister, 1000) for name in page]

        async def insert(suffix: str = suffix) -> None:  # before and after the position reached
            for model in ("m-0", "m-00", "m-9"):
                await create(catalog_stub, ns, model + suffix)

        await assert_inserts_between_pages_skip_and_repeat_nothing(lister, before, insert)


async def test_list_namespaces_pages(catalog_stub) -> None:
    async def namespaces(page_size: int, page_token: str) -> tuple[list[str], str]:
        page = await catalog_stub.ListNamespaces(
            pb.ListNamespacesRequest(page_size=page_size, page_token=page_token)
        )
        return [n.name for n in page.namespaces], page.next_page_token

    ns = unique("ns")
    for model in ("m", "n"):
        await create(catalog_stub, ns, model)
    for _ in range(2):
        await create(catalog_stub, unique("ns"), "m")
    everything = [name for page in await walk(namespaces, 1000) for name in page]
    assert len(everything) >= 3
    await assert_every_item_once_in_order(namespaces, everything)
    # A models token does not continue the namespaces listing.
    await assert_token_bound_to_its_query(models(catalog_stub, ns), [namespaces])
    await assert_garbled_tokens_rejected(namespaces)

    async def insert() -> None:
        for prefix in ("a", "z"):
            await create(catalog_stub, unique(prefix), "m")

    await assert_inserts_between_pages_skip_and_repeat_nothing(namespaces, everything, insert)

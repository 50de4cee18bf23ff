"""GetLineageSubgraph and ListLineageRecords keep the paging contract (tests/integration/paging.py)."""

from __future__ import annotations

from typing import Any

from modelreg.eventlog import TOKEN_METADATA_KEY, ConsistencyToken
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from tests.helpers import unique
from tests.integration.lineage.conftest import Writer
from tests.integration.lineage.test_lineage_service import a_record, record, token_md
from tests.integration.paging import (
    Lister,
    assert_every_item_once_in_order,
    assert_garbled_tokens_rejected,
    assert_inserts_between_pages_skip_and_repeat_nothing,
    assert_invalid,
    assert_token_bound_to_its_query,
    walk,
)


async def test_get_lineage_subgraph_pages(lineage_stub, writer: Writer) -> None:
    model = f"namespaces/{unique('ns')}/models/m"
    versions = [f"{model}/versions/{n}" for n in (1, 2, 3)]
    token = await writer.create_versions(versions)
    for i, version in enumerate(versions[:2]):
        _, written = await record(lineage_stub, version, a_record(f"{unique('r')}-{i}"), token)
        token = token.merge(ConsistencyToken.decode(written))
    metadata = {"token": token}

    def subgraph(*start: str, **query: Any) -> Lister:
        async def lister(page_size: int, page_token: str) -> tuple[list[str], str]:
            page = await lineage_stub.GetLineageSubgraph(
                pb.GetLineageSubgraphRequest(
                    query=pb.SubgraphQuery(start_nodes=list(start), **query),
                    page_size=page_size,
                    page_token=page_token,
                ),
                metadata=token_md(metadata["token"]),
            )
            return [n.id for n in page.nodes], page.next_page_token

        return lister

    start = f"model_version:{versions[0]}"
    upstream = subgraph(start, max_hops=1)
    nodes = [node for page in await walk(upstream, 1000) for node in page]
    assert len(nodes) >= 5 and nodes == sorted(nodes)
    await assert_every_item_once_in_order(upstream, nodes)
    await assert_token_bound_to_its_query(
        upstream,
        [
            subgraph(start, max_hops=2),
            subgraph(start, max_hops=1, direction=pb.DIRECTION_BIDIRECTIONAL),
            subgraph(f"model_version:{versions[1]}", max_hops=1),
            subgraph(start, max_hops=1, node_types=[pb.NODE_TYPE_DATASET]),
        ],
    )
    await assert_garbled_tokens_rejected(upstream)

    async def insert() -> None:  # a second record for the version adds upstream nodes
        _, written = await record(lineage_stub, versions[0], a_record(unique("later")), metadata["token"])
        metadata["token"] = metadata["token"].merge(ConsistencyToken.decode(written))

    await assert_inserts_between_pages_skip_and_repeat_nothing(upstream, nodes, insert)


async def test_list_lineage_records_pages(lineage_stub, writer: Writer) -> None:
    model = f"namespaces/{unique('ns')}/models/m"
    version, other = f"{model}/versions/1", f"{model}/versions/2"
    token = await writer.create_versions([version, other])
    names = []
    for i in range(6):
        recorded, written = await record(lineage_stub, version, a_record(f"{unique('r')}-{i}"), token)
        token = token.merge(ConsistencyToken.decode(written))
        names.append(recorded.name)
    _, written = await record(lineage_stub, other, a_record(unique("o")), token)
    token = token.merge(ConsistencyToken.decode(written))
    call = lineage_stub.SupersedeLineageRecord(
        pb.SupersedeLineageRecordRequest(name=names[2], record=a_record(unique("fix")), reason="wrong run"),
        metadata=token_md(token),
    )
    fixed = await call
    token = token.merge(ConsistencyToken.decode(dict(await call.trailing_metadata())[TOKEN_METADATA_KEY]))
    metadata = {"token": token}

    def records(parent: str, show_superseded: bool = False, filter: str = "") -> Lister:
        async def lister(page_size: int, page_token: str) -> tuple[list[str], str]:
            page = await lineage_stub.ListLineageRecords(
                pb.ListLineageRecordsRequest(
                    parent=parent,
                    show_superseded=show_superseded,
                    filter=filter,
                    page_size=page_size,
                    page_token=page_token,
                ),
                metadata=token_md(metadata["token"]),
            )
            return [r.name for r in page.records], page.next_page_token

        return lister

    history = records(version, show_superseded=True)
    current = records(version)
    await assert_every_item_once_in_order(history, [*names, fixed.name])
    await assert_every_item_once_in_order(current, [*names[:2], *names[3:], fixed.name])
    await assert_token_bound_to_its_query(
        history,
        [current, records(other, show_superseded=True), records(version, True, "superseded = false")],
    )
    still_current = records(version, True, "superseded = false")
    await assert_every_item_once_in_order(still_current, [*names[:2], *names[3:], fixed.name])
    await assert_token_bound_to_its_query(still_current, [records(version, True, "superseded = true")])
    await assert_garbled_tokens_rejected(history)
    await assert_invalid(
        lineage_stub.ListLineageRecords(pb.ListLineageRecordsRequest(parent=version, page_size=-1)),
        "page_size",
    )

    async def insert() -> None:
        _, written = await record(lineage_stub, version, a_record(unique("later")), metadata["token"])
        metadata["token"] = metadata["token"].merge(ConsistencyToken.decode(written))

    await assert_inserts_between_pages_skip_and_repeat_nothing(history, [*names, fixed.name], insert)

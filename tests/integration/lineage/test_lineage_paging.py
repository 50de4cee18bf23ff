"""GetLineageSubgraph keeps the paging contract (tests/integration/paging.py)."""

from __future__ import annotations

from modelreg.eventlog import ConsistencyToken
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from tests.helpers import unique
from tests.integration.lineage.conftest import Writer
from tests.integration.lineage.test_lineage_service import a_record, record, token_md
from tests.integration.paging import (
    Lister,
    assert_every_item_once_in_order,
    assert_garbled_tokens_rejected,
    assert_inserts_between_pages_skip_and_repeat_nothing,
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

    def subgraph(*start: str, **query: object) -> Lister:
        async def lister(page_size: int, page_token: str) -> tuple[list[str], str]:
            page = await lineage_stub.GetLineageSubgraph(
                pb.GetLineageSubgraphRequest(
                    query=pb.SubgraphQuery(start_nodes=list(start), **query),  # type: ignore[arg-type]
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

"""ListLineageRecords' filter against the real service, checked against a Python oracle
(tests/integration/filter_oracle.py): random filters over a version's records, current and
superseded, recorded once per module; plus each operator at its boundary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg.eventlog import TOKEN_METADATA_KEY, ConsistencyToken
from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from tests.helpers import unique
from tests.integration.filter_oracle import Field, boundaries, evaluate, filters, render
from tests.integration.lineage.conftest import Writer
from tests.integration.lineage.test_lineage_service import a_record, record, token_md

REASONS = ["wrong run", "wrong data", "typo"]
FIELDS = [
    # The service runs open in these tests: every record's creator is `anonymous`.
    Field("creator", "string", lambda r: r.creator, values=["anonymous", "anon", "b", "zzz", ""]),
    Field("reason", "string", lambda r: r.reason, values=[*REASONS, "", "wrong", "x"]),
    Field("superseded", "bool", lambda r: bool(r.superseded_by)),
    Field("create_time", "timestamp", lambda r: r.create_time.ToDatetime(tzinfo=UTC)),
]


@dataclass
class Dataset:
    version: str
    token: ConsistencyToken
    records: list[pb.LineageRecord]
    """Every record, superseded ones included, in recording order."""


@pytest.fixture(scope="module")
async def dataset(lineage_stub, writer: Writer) -> Dataset:
    version = f"namespaces/{unique('ns')}/models/m/versions/1"
    token = await writer.create_versions([version])
    names = []
    for i in range(7):
        recorded, written = await record(lineage_stub, version, a_record(f"{unique('r')}-{i}"), token)
        token = token.merge(ConsistencyToken.decode(written))
        names.append(recorded.name)
    for name, reason in zip(names[1::2], REASONS, strict=True):
        call = lineage_stub.SupersedeLineageRecord(
            pb.SupersedeLineageRecordRequest(name=name, record=a_record(unique("fix")), reason=reason),
            metadata=token_md(token),
        )
        await call
        token = token.merge(ConsistencyToken.decode(dict(await call.trailing_metadata())[TOKEN_METADATA_KEY]))
    return Dataset(version, token, await listed(lineage_stub, Dataset(version, token, []), "", True))


async def listed(
    stub, data: Dataset, filter_: str, show_superseded: bool, page_size: int = 0
) -> list[pb.LineageRecord]:
    found: list[pb.LineageRecord] = []
    token = ""
    while True:
        page = await stub.ListLineageRecords(
            pb.ListLineageRecordsRequest(
                parent=data.version,
                show_superseded=show_superseded,
                filter=filter_,
                page_size=page_size,
                page_token=token,
            ),
            metadata=token_md(data.token),
        )
        found += page.records
        token = page.next_page_token
        if not token:
            return found


async def test_the_dataset_exercises_every_field(dataset: Dataset) -> None:
    assert len(dataset.records) == 10
    assert {r.reason for r in dataset.records} == {"", *REASONS}
    assert sum(bool(r.superseded_by) for r in dataset.records) == 3
    assert len({r.create_time.ToDatetime() for r in dataset.records}) == 10


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_random_filters_match_a_python_evaluation(lineage_stub, dataset: Dataset, data) -> None:
    node = data.draw(filters(FIELDS, dataset.records), label="filter")
    show_superseded = data.draw(st.booleans(), label="show_superseded")
    page_size = data.draw(st.sampled_from([0, 1, 3]), label="page_size")
    visible = [r for r in dataset.records if show_superseded or not r.superseded_by]
    expected = [r.name for r in visible if evaluate(node, r)]
    got = await listed(lineage_stub, dataset, render(node), show_superseded, page_size)
    assert [r.name for r in got] == expected, render(node)


async def test_every_operator_at_its_boundary(lineage_stub, dataset: Dataset) -> None:
    """Each operator against a stored value, where `<` and `<=` (= and !=, IN and NOT IN, LIKE
    and ILIKE) must select different records: an off-by-one in the compiler shows here."""
    fields = {f.name: f for f in FIELDS}
    middle = dataset.records[4].create_time.ToDatetime(tzinfo=UTC)
    nodes = [
        *boundaries(fields["reason"], "wrong data"),
        *boundaries(fields["superseded"], True),
        *boundaries(fields["create_time"], middle),
    ]
    nodes += [("not", nodes[0]), ("and", [nodes[0], nodes[-1]]), ("or", [nodes[0], nodes[-1]])]
    for node in nodes:
        text = render(node)
        expected = [r.name for r in dataset.records if evaluate(node, r)]
        assert 0 < len(expected) < len(dataset.records), f"{text}: a weak boundary"
        got = await listed(lineage_stub, dataset, text, True)
        assert [r.name for r in got] == expected, text


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ("superseded = maybe", "filter: at position 13: expected true or false"),
        ("create_time < 3", "filter: at position 14: expected an RFC 3339 timestamp"),
        (
            "dataset = 'x'",
            "filter: at position 0: expected a field (creator, reason, superseded, create_time)",
        ),
        ("reason = 'a' AND", "filter: at position 16: expected a field"),
    ],
)
async def test_bad_filters_are_invalid_argument_naming_position_and_expectation(
    lineage_stub, dataset: Dataset, filter_: str, expected: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await listed(lineage_stub, dataset, filter_, False)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(expected), error.value.details()

"""ListTransitionRequests', ListPointerHistory's and ListAccessDenials' filters against the real
service, checked against a Python oracle (tests/integration/filter_oracle.py).

One model's requests are made once per module through the API, in every state,
by several requesters, with a rollback among them; the oracle reads each field
from the unfiltered listing, so the filter is the only thing under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from tests.integration.filter_oracle import Field, boundaries, evaluate, filters, render
from tests.integration.promotion.conftest import Facts, auth
from tests.integration.promotion.test_promotion_service import (
    approve,
    new_model,
    request,
    rpc_error,
    versions,
)

State = pb.TransitionRequest.State
PEOPLE = ["alice", "bob", "root", "carol", "", "b", "zzz"]


def when(message: Any, field: str) -> datetime | None:
    return getattr(message, field).ToDatetime(tzinfo=UTC) if message.HasField(field) else None


REQUEST_FIELDS = [
    Field(
        "state",
        "enum",
        lambda r: State.Name(r.state).removeprefix("STATE_"),
        values=["PENDING", "APPLIED", "REJECTED", "CANCELLED", "SUPERSEDED"],
    ),
    Field("requester", "string", lambda r: r.requester, values=PEOPLE),
    Field("requested_by", "string", lambda r: r.requester, values=PEOPLE),
    Field("decided_by", "string", lambda r: r.decided_by, values=PEOPLE),
    Field("rollback", "bool", lambda r: r.rollback),
    Field("emergency", "bool", lambda r: r.emergency),
    Field("create_time", "timestamp", lambda r: when(r, "create_time")),
    Field("update_time", "timestamp", lambda r: when(r, "update_time")),
]


def targets(entry: pb.PointerHistoryEntry) -> list[str]:
    return [c.pointer for c in entry.changes] + [f"deployments/{d.environment}" for d in entry.deployments]


@dataclass
class Dataset:
    model: str
    namespace: str
    requests: list[pb.TransitionRequest]
    history: list[pb.PointerHistoryEntry]
    denials: list[pb.AccessDenial]


def history_fields(names: list[str]) -> list[Field]:
    pointers = ["PRODUCTION", "STAGING", "champion", "deployments/prod"]
    return [
        Field("pointer", "any", targets, values=pointers),
        Field("transition_request", "string", lambda e: e.transition_request, values=names),
        Field("apply_time", "timestamp", lambda e: when(e, "apply_time")),
        Field("applied_time", "timestamp", lambda e: when(e, "apply_time")),
    ]


DENIAL_FIELDS = [
    Field("principal", "string", lambda d: d.principal, values=["victor", "alice", "carol", "bob", "v"]),
    Field(
        "action",
        "string",
        lambda d: d.action,
        values=["CreateTransitionRequest", "ApproveTransitionRequest", "CancelTransitionRequest", "B"],
    ),
    Field("deny_time", "timestamp", lambda d: when(d, "deny_time")),
]


@pytest.fixture(scope="module")
async def dataset(promotion_stub, facts: Facts) -> Dataset:
    model = new_model()
    namespace = model.split("/")[1]
    await versions(facts, model, 1, 2, 3)
    # PRODUCTION is protected by the default policy (one approval); STAGING and aliases are not.
    first = await request(promotion_stub, model, ("PRODUCTION", 1))
    await approve(promotion_stub, first.name, "bob")
    await request(promotion_stub, model, ("STAGING", 1), who="bob")
    second = await request(promotion_stub, model, ("PRODUCTION", 2), who="root")
    await approve(promotion_stub, second.name, "carol")
    await request(promotion_stub, model, ("STAGING", 2), ("champion", 2))
    rejected = await request(promotion_stub, model, ("PRODUCTION", 3), who="bob")
    await promotion_stub.RejectTransitionRequest(
        pb.RejectTransitionRequestRequest(name=rejected.name, comment="no"), metadata=auth("carol")
    )
    cancelled = await request(promotion_stub, model, ("PRODUCTION", 3))
    await promotion_stub.CancelTransitionRequest(
        pb.CancelTransitionRequestRequest(name=cancelled.name, comment="oops"), metadata=auth("alice")
    )
    await promotion_stub.Rollback(
        pb.RollbackRequest(model=model, stage="PRODUCTION", reason="p99"), metadata=auth("alice")
    )
    await request(promotion_stub, model, ("PRODUCTION", 3), who="root")
    await request(promotion_stub, model, ("STAGING", 3), who="bob")
    await request(promotion_stub, model, ("champion", 3), who="root")
    # Denials: a viewer may not request, an editor may not approve.
    await rpc_error(request(promotion_stub, model, ("PRODUCTION", 1), who="victor"))
    pending = await request(promotion_stub, model, ("PRODUCTION", 1), who="bob")
    await rpc_error(approve(promotion_stub, pending.name, "alice"))
    await rpc_error(approve(promotion_stub, pending.name, "bob"))
    return Dataset(
        model,
        namespace,
        list(await requests(promotion_stub, model, "")),
        list(await history(promotion_stub, model, "")),
        list(await denials(promotion_stub, namespace, "")),
    )


async def requests(stub, model: str, filter_: str, page_size: int = 1000) -> list[pb.TransitionRequest]:
    found: list[pb.TransitionRequest] = []
    token = ""
    while True:
        page = await stub.ListTransitionRequests(
            pb.ListTransitionRequestsRequest(
                parent=model, filter=filter_, page_size=page_size, page_token=token
            ),
            metadata=auth("victor"),
        )
        found += page.transition_requests
        token = page.next_page_token
        if not token:
            return found


async def history(stub, model: str, filter_: str) -> list[pb.PointerHistoryEntry]:
    page = await stub.ListPointerHistory(
        pb.ListPointerHistoryRequest(model=model, filter=filter_, page_size=1000), metadata=auth("victor")
    )
    assert not page.next_page_token
    return list(page.entries)


async def denials(stub, namespace: str, filter_: str) -> list[pb.AccessDenial]:
    page = await stub.ListAccessDenials(
        pb.ListAccessDenialsRequest(parent=f"namespaces/{namespace}", filter=filter_, page_size=1000),
        metadata=auth("root"),
    )
    return list(page.denials)


async def test_the_dataset_exercises_every_field(dataset: Dataset) -> None:
    """Guards the property tests against a dataset too uniform to tell right from wrong."""
    states = {State.Name(r.state) for r in dataset.requests}
    assert states == {f"STATE_{s}" for s in ("PENDING", "APPLIED", "REJECTED", "CANCELLED", "SUPERSEDED")}
    assert {r.requester for r in dataset.requests} == {"alice", "bob", "root"}
    assert any(r.rollback for r in dataset.requests)
    assert any(r.update_time != r.create_time for r in dataset.requests)
    assert {p for e in dataset.history for p in targets(e)} >= {"PRODUCTION", "STAGING", "champion"}
    assert len({(d.principal, d.action) for d in dataset.denials}) == 3


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_random_request_filters_match_a_python_evaluation(
    promotion_stub, dataset: Dataset, data
) -> None:
    node = data.draw(filters(REQUEST_FIELDS, dataset.requests), label="filter")
    page_size = data.draw(st.sampled_from([1, 4, 1000]), label="page_size")
    text = render(node)
    expected = [r.name for r in dataset.requests if evaluate(node, r)]
    got = [r.name for r in await requests(promotion_stub, dataset.model, text, page_size)]
    assert got == expected, text


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_random_history_and_denial_filters_match_a_python_evaluation(
    promotion_stub, dataset: Dataset, data
) -> None:
    fields = history_fields([e.transition_request for e in dataset.history])
    node = data.draw(filters(fields, dataset.history), label="history filter")
    expected = [e.transition_request for e in dataset.history if evaluate(node, e)]
    got = [e.transition_request for e in await history(promotion_stub, dataset.model, render(node))]
    assert got == expected, render(node)
    node = data.draw(filters(DENIAL_FIELDS, dataset.denials), label="denial filter")
    expected_denials = [(d.principal, d.action) for d in dataset.denials if evaluate(node, d)]
    got_denials = [
        (d.principal, d.action) for d in await denials(promotion_stub, dataset.namespace, render(node))
    ]
    assert got_denials == expected_denials, render(node)


async def test_every_operator_at_its_boundary(promotion_stub, dataset: Dataset) -> None:
    """Each operator against a stored value, where `<` and `<=` (= and !=, IN and NOT IN, LIKE
    and ILIKE) must select different requests: an off-by-one in the compiler shows here."""
    middle = dataset.requests[len(dataset.requests) // 2]
    fields = {f.name: f for f in REQUEST_FIELDS}
    nodes = [
        *boundaries(fields["requester"], "bob"),
        *boundaries(fields["decided_by"], "carol"),
        *boundaries(fields["state"], "APPLIED"),
        *boundaries(fields["rollback"], True),
        *boundaries(fields["create_time"], when(middle, "create_time")),
        *boundaries(
            fields["update_time"], when(middle, "update_time") or when(dataset.requests[-1], "update_time")
        ),
    ]
    nodes += [("not", nodes[0]), ("and", [nodes[0], nodes[-1]]), ("or", [nodes[0], nodes[-1]])]
    for node in nodes:
        text = render(node)
        expected = [r.name for r in dataset.requests if evaluate(node, r)]
        assert 0 < len(expected) < len(dataset.requests) or node[2] in ("<", ">"), f"{text}: a weak boundary"
        assert [r.name for r in await requests(promotion_stub, dataset.model, text)] == expected, text
    entry = dataset.history[1]
    for node in boundaries(history_fields([])[2], when(entry, "apply_time")) + boundaries(
        history_fields([])[0], "STAGING"
    ):
        expected = [e.transition_request for e in dataset.history if evaluate(node, e)]
        got = [e.transition_request for e in await history(promotion_stub, dataset.model, render(node))]
        assert got == expected, render(node)


async def test_the_issue_examples_and_tokens_bound_to_the_filter(promotion_stub, dataset: Dataset) -> None:
    pending_by_bob = await requests(
        promotion_stub, dataset.model, 'state = "PENDING" AND requested_by = "bob"'
    )
    assert pending_by_bob and all(
        (r.state, r.requester) == (State.STATE_PENDING, "bob") for r in pending_by_bob
    )
    rfc_min = min(t for e in dataset.history if (t := when(e, "apply_time")) is not None)
    moved = await history(
        promotion_stub, dataset.model, f'pointer = "PRODUCTION" AND applied_time >= "{rfc_min.isoformat()}"'
    )
    assert [e.transition_request for e in moved] == [
        e.transition_request for e in dataset.history if "PRODUCTION" in targets(e)
    ]
    first = await promotion_stub.ListTransitionRequests(
        pb.ListTransitionRequestsRequest(parent=dataset.model, filter="rollback = false", page_size=1),
        metadata=auth("victor"),
    )
    error = await rpc_error(
        promotion_stub.ListTransitionRequests(
            pb.ListTransitionRequestsRequest(
                parent=dataset.model, filter="rollback = true", page_size=1, page_token=first.next_page_token
            ),
            metadata=auth("victor"),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details().startswith("page_token")


@pytest.mark.parametrize(
    ("call", "filter_", "expected"),
    [
        ("requests", "state < PENDING", "filter: at position 6: expected an operator for state (= != IN)"),
        ("requests", "approver = 'bob'", "filter: at position 0: expected a field (state, requester,"),
        ("requests", "rollback = yes", "filter: at position 11: expected true or false"),
        ("history", "pointer LIKE 'P%'", "filter: at position 8: expected an operator for pointer (= != IN)"),
        ("history", "apply_time > 5", "filter: at position 13: expected an RFC 3339 timestamp"),
        ("denials", "principal = ", "filter: at position 12: expected a value"),
    ],
)
async def test_bad_filters_are_invalid_argument_naming_position_and_expectation(
    promotion_stub, dataset: Dataset, call: str, filter_: str, expected: str
) -> None:
    calls = {
        "requests": lambda: requests(promotion_stub, dataset.model, filter_),
        "history": lambda: history(promotion_stub, dataset.model, filter_),
        "denials": lambda: denials(promotion_stub, dataset.namespace, filter_),
    }
    error = await rpc_error(calls[call]())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(expected), error.details()

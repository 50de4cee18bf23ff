"""The promotion service through gRPC on a running host, against Tansu and PostgreSQL."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from modelreg.eventlog import TOKEN_METADATA_KEY
from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from tests.helpers import count_rows, unique, violations
from tests.integration.promotion.conftest import Facts, auth

State = pb.TransitionRequest.State


def new_model() -> str:
    return f"namespaces/{unique('ns')}/models/{unique('m')}"


def transition(*moves: tuple[str, int], deployments: dict[str, dict[int, int]] | None = None, **kw: Any):
    return pb.TransitionRequest(
        moves=[pb.PointerMove(pointer=p, version=v) for p, v in moves],
        deployments=[
            pb.Deployment(
                environment=env, weights=[pb.TrafficWeight(version=v, percent=w) for v, w in split.items()]
            )
            for env, split in (deployments or {}).items()
        ],
        **{"comment": "because", **kw},
    )


async def request(stub, model: str, *moves, who: str = "alice", **kw):
    return await stub.CreateTransitionRequest(
        pb.CreateTransitionRequestRequest(parent=model, transition_request=transition(*moves, **kw)),
        metadata=auth(who),
    )


async def approve(stub, name: str, who: str, comment: str = "lgtm"):
    return await stub.ApproveTransitionRequest(
        pb.ApproveTransitionRequestRequest(name=name, comment=comment), metadata=auth(who)
    )


async def pointers(stub, model: str) -> pb.Pointers:
    return await stub.GetPointers(pb.GetPointersRequest(model=model), metadata=auth("victor"))


async def set_policy(stub, parent: str, **fields: Any) -> None:
    fields.setdefault("separation_of_duties", True)
    await stub.SetPromotionPolicy(
        pb.SetPromotionPolicyRequest(policy=pb.PromotionPolicy(parent=parent, **fields)),
        metadata=auth("root"),
    )


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


async def versions(facts: Facts, model: str, *numbers: int, **kw: Any) -> None:
    for n in numbers:
        await facts.version(model, n, **kw)


async def test_unprotected_move_applies_at_once(promotion_stub, facts: Facts) -> None:
    model = new_model()
    await versions(facts, model, 1, 2)
    call = promotion_stub.CreateTransitionRequest(
        pb.CreateTransitionRequestRequest(
            parent=model, transition_request=transition(("STAGING", 1), ("champion", 2))
        ),
        metadata=auth("alice"),
    )
    created = await call
    assert created.state == State.STATE_APPLIED
    assert created.required_approvals == 0 and created.decided_by == "alice"
    assert TOKEN_METADATA_KEY in dict(await call.trailing_metadata())
    got = await pointers(promotion_stub, model)
    assert dict(got.stages) == {"STAGING": 1} and dict(got.aliases) == {"champion": 2}
    assert got.etag == 'W/"1"'


async def test_protected_move_waits_for_an_approver_then_applies(promotion_stub, facts: Facts) -> None:
    model = new_model()
    await versions(facts, model, 7)
    created = await request(promotion_stub, model, ("PRODUCTION", 7))
    assert created.state == State.STATE_PENDING and created.required_approvals == 1
    assert list(created.protected_targets) == ["PRODUCTION"]
    assert dict((await pointers(promotion_stub, model)).stages) == {}

    listed = await promotion_stub.ListTransitionRequests(
        pb.ListTransitionRequestsRequest(parent=model, state=State.STATE_PENDING), metadata=auth("victor")
    )
    assert [r.name for r in listed.transition_requests] == [created.name]

    applied = await approve(promotion_stub, created.name, "bob", "ship it")
    assert applied.state == State.STATE_APPLIED and applied.decided_by == "bob"
    assert [(a.approver, a.comment) for a in applied.approvals] == [("bob", "ship it")]
    assert dict((await pointers(promotion_stub, model)).stages) == {"PRODUCTION": 7}

    history = await promotion_stub.ListPointerHistory(
        pb.ListPointerHistoryRequest(model=model, pointer="PRODUCTION"), metadata=auth("victor")
    )
    (entry,) = history.entries
    assert [(c.pointer, c.version, c.previous) for c in entry.changes] == [("PRODUCTION", 7, 0)]
    assert (entry.requester, entry.applied_by, entry.comment) == ("alice", "bob", "because")
    assert [a.approver for a in entry.approvals] == ["bob"]
    assert entry.apply_time.seconds > 0


async def test_denials_are_refused_and_recorded(promotion_stub, facts: Facts, settings) -> None:
    model = new_model()
    namespace = model.split("/")[1]
    await versions(facts, model, 7)
    await set_policy(promotion_stub, model, required_approvals=1)

    # A viewer may not request; an editor may not approve; the requester may not approve.
    error = await rpc_error(request(promotion_stub, model, ("PRODUCTION", 7), who="victor"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    created = await request(promotion_stub, model, ("PRODUCTION", 7), who="bob")
    error = await rpc_error(approve(promotion_stub, created.name, "alice"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "approver role" in error.details()
    error = await rpc_error(approve(promotion_stub, created.name, "bob"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "separation of duties" in error.details()
    error = await rpc_error(
        promotion_stub.CancelTransitionRequest(
            pb.CancelTransitionRequestRequest(name=created.name), metadata=auth("carol")
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED

    denials = await promotion_stub.ListAccessDenials(
        pb.ListAccessDenialsRequest(parent=f"namespaces/{namespace}"), metadata=auth("root")
    )
    assert [(d.principal, d.action) for d in denials.denials] == [
        ("carol", "CancelTransitionRequest"),
        ("bob", "ApproveTransitionRequest"),
        ("alice", "ApproveTransitionRequest"),
        ("victor", "CreateTransitionRequest"),
    ]
    assert "separation of duties" in denials.denials[1].reason
    still = await promotion_stub.GetTransitionRequest(
        pb.GetTransitionRequestRequest(name=created.name), metadata=auth("victor")
    )
    assert still.state == State.STATE_PENDING and not still.approvals


@pytest.mark.parametrize(
    ("required", "sod", "approvers", "outcome"),
    [
        (2, True, ["bob", "carol"], State.STATE_APPLIED),
        (2, True, ["bob"], State.STATE_PENDING),
        (2, True, ["alice", "bob"], State.STATE_PENDING),  # alice requested: denied, does not count
        (1, False, ["root"], State.STATE_APPLIED),  # root requested and may approve without SoD
        (3, True, ["bob", "carol", "dave"], State.STATE_APPLIED),
    ],
)
async def test_policy_matrix_through_grpc(
    promotion_stub, facts: Facts, required: int, sod: bool, approvers: list[str], outcome: int
) -> None:
    model = new_model()
    await versions(facts, model, 3)
    await set_policy(promotion_stub, model, required_approvals=required, separation_of_duties=sod)
    requester = "root" if not sod else "alice"
    created = await request(promotion_stub, model, ("PRODUCTION", 3), who=requester)
    last = created
    for approver in approvers:
        try:
            last = await approve(promotion_stub, created.name, approver)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    got = await promotion_stub.GetTransitionRequest(
        pb.GetTransitionRequestRequest(name=created.name), metadata=auth("victor")
    )
    assert got.state == outcome
    assert dict((await pointers(promotion_stub, model)).stages) == (
        {"PRODUCTION": 3} if outcome == State.STATE_APPLIED else {}
    )
    assert last.state == outcome


async def test_failed_check_names_check_and_values_and_appends_nothing(
    promotion_stub, facts: Facts, settings
) -> None:
    model = new_model()
    await facts.version(model, 4, metrics={"auc": 0.85}, signature=False)
    await set_policy(
        promotion_stub,
        model,
        required_checks=[
            pb.RequiredCheck(
                kind=pb.RequiredCheck.KIND_METRIC_THRESHOLD,
                metric="auc",
                comparison=pb.RequiredCheck.COMPARISON_GREATER_OR_EQUAL,
                threshold=0.9,
            ),
            pb.RequiredCheck(kind=pb.RequiredCheck.KIND_SIGNATURE_PRESENT),
            pb.RequiredCheck(kind=pb.RequiredCheck.KIND_LINEAGE_RECORDED),
        ],
    )
    before = await count_rows(
        settings.pg_dsn, "SELECT count(*) FROM promotion.requests WHERE model = $1", model
    )
    error = await rpc_error(request(promotion_stub, model, ("PRODUCTION", 4)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "metrics.auc >= 0.9 failed for version 4: auc = 0.85" in error.details()
    assert "SIGNATURE_PRESENT failed for version 4" in error.details()
    assert "LINEAGE_RECORDED failed for version 4" in error.details()
    assert before == 0
    assert (
        await count_rows(settings.pg_dsn, "SELECT count(*) FROM promotion.requests WHERE model = $1", model)
        == 0
    )

    await facts.version(model, 5, metrics={"auc": 0.93})
    await facts.lineage(model, 5)
    created = await request(promotion_stub, model, ("PRODUCTION", 5))
    assert created.state == State.STATE_PENDING
    # Facts change before the last approval: the checks run again.
    await facts.deprecate(model, 5)
    await set_policy(promotion_stub, model)  # unchanged request keeps its checks
    applied = await approve(promotion_stub, created.name, "bob")
    assert applied.state == State.STATE_APPLIED  # deprecated still passes auc/signature/lineage


async def test_missing_deleted_and_not_ready_versions(promotion_stub, facts: Facts) -> None:
    model = new_model()
    await facts.version(model, 1)
    await facts.version(model, 2)
    await facts.delete(model, 2)
    await facts.version(model, 3, ready=False)
    for moves, needle in [
        ((("champion", 9),), "versions/9 does not exist"),
        ((("champion", 2),), "versions/2 is deleted"),
    ]:
        error = await rpc_error(request(promotion_stub, model, *moves))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and needle in error.details()
    error = await rpc_error(request(promotion_stub, model, deployments={"canary": {1: 50, 3: 50}}))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "version 3 is PENDING_UPLOAD" in error.details()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (transition(("Bad Name", 1)), "transition_request.moves[0].pointer"),
        (transition(("PRODUCTION", 1), ("PRODUCTION", 2)), "transition_request.moves[1].pointer"),
        (transition(("ARCHIVED", 0)), "transition_request.moves[0].version"),
        (transition(deployments={"prod": {1: 90, 2: 20}}), "transition_request.deployments[0].weights"),
        (transition(deployments={"Prod!": {1: 100}}), "transition_request.deployments[0].environment"),
        (transition(), "transition_request.moves"),
        (transition(("STAGING", 1), comment="x" * 5000), "transition_request.comment"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    promotion_stub, settings, body: pb.TransitionRequest, field: str
) -> None:
    model = new_model()
    error = await rpc_error(
        promotion_stub.CreateTransitionRequest(
            pb.CreateTransitionRequestRequest(parent=model, transition_request=body), metadata=auth("alice")
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error)[0] == field
    assert (
        await count_rows(
            settings.pg_dsn, "SELECT count(*) FROM promotion.stream_heads WHERE stream = $1", model
        )
        == 0
    )


async def test_an_overlong_request_id_is_invalid_argument_and_appends_nothing(
    promotion_stub, settings
) -> None:
    model = new_model()
    error = await rpc_error(
        promotion_stub.CreateTransitionRequest(
            pb.CreateTransitionRequestRequest(
                parent=model, transition_request=transition(("STAGING", 1)), request_id="r" * 129
            ),
            metadata=auth("alice"),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "request_id: is longer than 128 characters"
    assert violations(error)[0] == "request_id"
    assert (
        await count_rows(
            settings.pg_dsn, "SELECT count(*) FROM promotion.stream_heads WHERE stream = $1", model
        )
        == 0
    )


async def test_bad_names_are_invalid_argument(promotion_stub) -> None:
    for call in [
        promotion_stub.GetPointers(pb.GetPointersRequest(model="models/x"), metadata=auth("victor")),
        promotion_stub.ApproveTransitionRequest(
            pb.ApproveTransitionRequestRequest(name="namespaces/a/models/b"), metadata=auth("bob")
        ),
        promotion_stub.WatchPromotions(
            pb.WatchPromotionsRequest(resume_token="garbage!"), metadata=auth("root")
        ).read(),
    ]:
        assert (await rpc_error(call)).code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_rollback_restores_exactly_the_previous_version(promotion_stub, facts: Facts) -> None:
    model = new_model()
    await versions(facts, model, 3, 5, 7)
    await set_policy(promotion_stub, model, required_approvals=2, emergency_rollback=True)
    for version in (3, 5, 7):
        created = await request(promotion_stub, model, ("PRODUCTION", version))
        await approve(promotion_stub, created.name, "bob")
        await approve(promotion_stub, created.name, "carol")
    assert dict((await pointers(promotion_stub, model)).stages) == {"PRODUCTION": 7}

    error = await rpc_error(
        promotion_stub.Rollback(pb.RollbackRequest(model=model, stage="PRODUCTION"), metadata=auth("alice"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in error.details()

    # Emergency: a single approver suffices under this policy.
    rollback = await promotion_stub.Rollback(
        pb.RollbackRequest(model=model, stage="PRODUCTION", reason="p99 doubled", emergency=True),
        metadata=auth("alice"),
    )
    assert rollback.rollback and rollback.emergency and rollback.required_approvals == 1
    assert [(m.pointer, m.version) for m in rollback.moves] == [("PRODUCTION", 5)]
    applied = await approve(promotion_stub, rollback.name, "dave")
    assert applied.state == State.STATE_APPLIED
    assert dict((await pointers(promotion_stub, model)).stages) == {"PRODUCTION": 5}
    history = await promotion_stub.ListPointerHistory(
        pb.ListPointerHistoryRequest(model=model, pointer="PRODUCTION", page_size=2), metadata=auth("victor")
    )
    latest = history.entries[0]
    assert latest.rollback and latest.rollback_reason == "p99 doubled"
    assert [(c.version, c.previous) for c in latest.changes] == [(5, 7)]
    assert history.next_page_token
    rest = await promotion_stub.ListPointerHistory(
        pb.ListPointerHistoryRequest(model=model, pointer="PRODUCTION", page_token=history.next_page_token),
        metadata=auth("victor"),
    )
    assert [e.changes[0].version for e in rest.entries] == [5, 3]

    # A normal rollback goes through the whole policy: two approvals.
    normal = await promotion_stub.Rollback(
        pb.RollbackRequest(model=model, stage="PRODUCTION", reason="back again"), metadata=auth("alice")
    )
    assert normal.required_approvals == 2 and [(m.pointer, m.version) for m in normal.moves] == [
        ("PRODUCTION", 7)
    ]


async def test_traffic_split_is_a_governed_transition(promotion_stub, facts: Facts) -> None:
    model = new_model()
    await versions(facts, model, 7, 8)
    created = await request(promotion_stub, model, deployments={"prod": {7: 90, 8: 10}})
    assert created.state == State.STATE_PENDING and list(created.protected_targets) == ["deployments/prod"]
    await approve(promotion_stub, created.name, "bob")
    got = await pointers(promotion_stub, model)
    assert [(d.environment, [(w.version, w.percent) for w in d.weights]) for d in got.deployments] == [
        ("prod", [(7, 90), (8, 10)])
    ]
    error = await rpc_error(request(promotion_stub, model, deployments={"prod": {7: 50, 8: 40}}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "add up to 90" in error.details()


async def test_applying_supersedes_competing_requests_and_idempotent_retries(
    promotion_stub, facts: Facts
) -> None:
    model = new_model()
    await versions(facts, model, 1, 2)
    first = await request(promotion_stub, model, ("PRODUCTION", 1))
    second = await request(promotion_stub, model, ("PRODUCTION", 2))
    await approve(promotion_stub, first.name, "bob")
    got = await promotion_stub.GetTransitionRequest(
        pb.GetTransitionRequestRequest(name=second.name), metadata=auth("victor")
    )
    assert got.state == State.STATE_SUPERSEDED
    error = await rpc_error(approve(promotion_stub, second.name, "bob"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION

    retry = pb.CreateTransitionRequestRequest(
        parent=model, transition_request=transition(("champion", 2)), request_id="once-only"
    )
    a = await promotion_stub.CreateTransitionRequest(retry, metadata=auth("alice"))
    b = await promotion_stub.CreateTransitionRequest(retry, metadata=auth("alice"))
    assert a.name == b.name
    assert (await pointers(promotion_stub, model)).etag == 'W/"2"'


async def test_reject_and_cancel_are_final_decisions_with_their_actor(promotion_stub, facts: Facts) -> None:
    model = new_model()
    await versions(facts, model, 1)
    rejected = await request(promotion_stub, model, ("PRODUCTION", 1))
    done = await promotion_stub.RejectTransitionRequest(
        pb.RejectTransitionRequestRequest(name=rejected.name, comment="not yet"), metadata=auth("bob")
    )
    assert (done.state, done.decided_by, done.decision_comment) == (State.STATE_REJECTED, "bob", "not yet")
    error = await rpc_error(approve(promotion_stub, rejected.name, "carol"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "REJECTED" in error.details()

    cancelled = await request(promotion_stub, model, ("PRODUCTION", 1))
    done = await promotion_stub.CancelTransitionRequest(
        pb.CancelTransitionRequestRequest(name=cancelled.name, comment="wrong one"), metadata=auth("alice")
    )
    assert (done.state, done.decided_by) == (State.STATE_CANCELLED, "alice")
    assert dict((await pointers(promotion_stub, model)).stages) == {}
    listed = await promotion_stub.ListTransitionRequests(
        pb.ListTransitionRequestsRequest(parent=model), metadata=auth("victor")
    )
    assert [r.name for r in listed.transition_requests] == [cancelled.name, rejected.name]


async def test_effective_policy_model_over_namespace_over_default(promotion_stub) -> None:
    model = new_model()
    namespace = "/".join(model.split("/")[:2])
    get = promotion_stub.GetPromotionPolicy
    default = await get(pb.GetPromotionPolicyRequest(parent=model), metadata=auth("victor"))
    assert default.default and list(default.protected) == ["PRODUCTION", "deployments/*"]
    assert default.separation_of_duties and default.required_approvals == 1
    await set_policy(promotion_stub, namespace, required_approvals=2)
    inherited = await get(pb.GetPromotionPolicyRequest(parent=model), metadata=auth("victor"))
    assert (inherited.parent, inherited.required_approvals, inherited.default) == (namespace, 2, False)
    await set_policy(promotion_stub, model, required_approvals=3, protected=["champion"])
    own = await get(pb.GetPromotionPolicyRequest(parent=model), metadata=auth("victor"))
    assert (own.parent, own.required_approvals, list(own.protected)) == (model, 3, ["champion"])
    error = await rpc_error(
        promotion_stub.SetPromotionPolicy(
            pb.SetPromotionPolicyRequest(policy=pb.PromotionPolicy(parent=model)), metadata=auth("bob")
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = await rpc_error(
        promotion_stub.SetPromotionPolicy(
            pb.SetPromotionPolicyRequest(
                policy=pb.PromotionPolicy(parent=model, required_checks=[pb.RequiredCheck()])
            ),
            metadata=auth("root"),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "required_checks[0].kind" in error.details()

"""A promotion gated on a recent evaluation (issue 20): the RECENT_EVALUATION check reads the
evaluations the lineage topic records, and a refusal names the failing check and why; against the real
promotion host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.duration_pb2 import Duration

from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from tests.helpers import violations
from tests.integration.promotion.conftest import Facts, auth
from tests.integration.promotion.test_promotion_service import (
    approve,
    new_model,
    pointers,
    request,
    rpc_error,
    set_policy,
    versions,
)

GOLDEN = "s3://data/golden-v3"
CHECK = pb.RequiredCheck(
    kind=pb.RequiredCheck.KIND_RECENT_EVALUATION,
    metric="auc",
    comparison=pb.RequiredCheck.COMPARISON_GREATER_OR_EQUAL,
    threshold=0.9,
    dataset_uri=GOLDEN,
    max_age=Duration(seconds=7 * 86400),
)
NAME = f"recent evaluation auc >= 0.9 on {GOLDEN} within 7d"


async def test_a_promotion_gated_on_a_recent_evaluation(promotion_stub, facts: Facts) -> None:
    model = new_model()
    await versions(facts, model, 1, 2, 3, 4)
    await set_policy(promotion_stub, model, required_checks=[CHECK])
    policy = await promotion_stub.GetPromotionPolicy(
        pb.GetPromotionPolicyRequest(parent=model), metadata=auth("victor")
    )
    assert policy.required_checks[0].max_age.seconds == 7 * 86400
    assert policy.required_checks[0].dataset_uri == GOLDEN
    now = datetime.now(UTC)

    async def refused(version: int) -> str:
        error = await rpc_error(request(promotion_stub, model, ("PRODUCTION", version)))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        details = error.details() or ""
        assert f"{NAME} failed for version {version}" in details, details
        return details

    assert "no evaluation on" in await refused(1)
    # Stale: good, but ten days old (a newer one on another dataset does not count).
    await facts.evaluation(model, 2, GOLDEN, {"auc": 0.95}, now - timedelta(days=10))
    await facts.evaluation(model, 2, "s3://data/other", {"auc": 0.99}, now - timedelta(hours=1))
    assert "days old" in await refused(2)
    # Recent but below the threshold; an older, better one does not count.
    await facts.evaluation(model, 3, GOLDEN, {"auc": 0.95}, now - timedelta(days=3))
    await facts.evaluation(model, 3, GOLDEN, {"auc": 0.87}, now - timedelta(days=1))
    assert "auc = 0.87" in await refused(3)
    # Recent and good: the request waits for approval (PRODUCTION is protected) and applies.
    await facts.evaluation(model, 4, GOLDEN, {"auc": 0.93}, now - timedelta(days=2))
    created = await request(promotion_stub, model, ("PRODUCTION", 4))
    assert created.state == pb.TransitionRequest.STATE_PENDING
    await approve(promotion_stub, created.name, "bob")
    assert (await pointers(promotion_stub, model)).stages["PRODUCTION"] == 4


async def test_a_recent_evaluation_check_names_its_dataset(promotion_stub) -> None:
    model = new_model()
    bad = pb.RequiredCheck()
    bad.CopyFrom(CHECK)
    bad.ClearField("dataset_uri")
    error = await rpc_error(
        promotion_stub.SetPromotionPolicy(
            pb.SetPromotionPolicyRequest(policy=pb.PromotionPolicy(parent=model, required_checks=[bad])),
            metadata=auth("root"),
        )
    )
    assert violations(error) == ["policy.required_checks[0].dataset_uri"]

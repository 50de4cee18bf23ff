"""Deployment revisions (issue 20) and deployment acknowledgements (issue 16.3) through gRPC on a
running promotion host, against Tansu and PostgreSQL."""

from __future__ import annotations

import json

import asyncpg
import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from modelreg.projections.replay import digest, rebuild
from modelreg.promotion.adapters.projection import PromotionProjection
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.helpers import count_rows, violations
from tests.integration.promotion.conftest import Facts, auth
from tests.integration.promotion.test_promotion_service import approve, new_model, rpc_error, versions
from tests.integration.promotion.test_sdk_cli_filters import cli, client

State = pb.TransitionRequest.State
Report = pb.DeploymentReport
IMAGE_1 = "ghcr.io/acme/serve@sha256:" + "1" * 64
IMAGE_2 = "ghcr.io/acme/serve@sha256:" + "2" * 64
SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {"batch_size": {"type": "integer", "minimum": 1}, "default_input": {"type": "number"}},
        "required": ["batch_size"],
    }
)


def spec(env: str = "prod", split: dict[int, int] | None = None, **fields) -> pb.Deployment:
    return pb.Deployment(
        environment=env,
        weights=[pb.TrafficWeight(version=v, percent=p) for v, p in (split or {}).items()],
        **fields,
    )


async def update(stub, model: str, deployment: pb.Deployment, *paths: str, reason: str = "why", **kw):
    return await stub.UpdateDeployment(
        pb.UpdateDeploymentRequest(
            model=model, deployment=deployment, update_mask=FieldMask(paths=list(paths)), reason=reason, **kw
        ),
        metadata=auth("alice"),
    )


async def applied(stub, model: str, deployment: pb.Deployment, *paths: str, reason: str = "why"):
    """Requests the change and, as the default policy protects `deployments/*`, has bob approve it."""
    created = await update(stub, model, deployment, *paths, reason=reason)
    assert created.state == State.STATE_PENDING
    assert list(created.protected_targets) == [f"deployments/{deployment.environment}"]
    done = await approve(stub, created.name, "bob")
    assert done.state == State.STATE_APPLIED
    return done


async def current(stub, model: str, env: str = "prod") -> pb.Deployment:
    return await stub.GetDeployment(
        pb.GetDeploymentRequest(model=model, environment=env), metadata=auth("victor")
    )


async def revisions(stub, model: str, env: str = "prod") -> list[pb.DeploymentRevision]:
    answer = await stub.ListDeploymentRevisions(
        pb.ListDeploymentRevisionsRequest(model=model, environment=env), metadata=auth("victor")
    )
    return list(answer.revisions)


def without_revision(d: pb.Deployment) -> pb.Deployment:
    copy = pb.Deployment()
    copy.CopyFrom(d)
    copy.ClearField("revision")
    copy.ClearField("restored_revision")
    return copy


async def test_serving_code_and_config_changes_are_revisions_not_versions(
    promotion_settings: Settings, promotion_stub, facts: Facts
) -> None:
    model = new_model()
    await versions(facts, model, 1, 2)
    count_versions = "SELECT count(*) FROM promotion.version_facts WHERE model = $1"
    assert await count_rows(promotion_settings.pg_dsn, count_versions, model) == 2

    config = json.dumps({"batch_size": 8})
    await applied(
        promotion_stub,
        model,
        spec(
            split={1: 90, 2: 10},
            serving_code=pb.ServingCode(image=IMAGE_1),
            runtime_config=config,
            config_schema=SCHEMA,
        ),
        reason="first rollout",
    )
    first = await current(promotion_stub, model)
    assert first.revision == 1 and first.serving_code.image == IMAGE_1

    # Only the serving code: the split, the config and the schema stay; no version is made.
    await applied(
        promotion_stub,
        model,
        spec(serving_code=pb.ServingCode(image=IMAGE_2)),
        "serving_code",
        reason="fix a default for a missing input",
    )
    second = await current(promotion_stub, model)
    assert second.revision == 2
    assert second.serving_code.image == IMAGE_2
    assert [(w.version, w.percent) for w in second.weights] == [(1, 90), (2, 10)]
    assert json.loads(second.runtime_config) == {"batch_size": 8}
    # Only the config, then only the serving code as a repository at a commit.
    await applied(
        promotion_stub,
        model,
        spec(runtime_config='{"default_input": 0.5, "batch_size": 16}'),
        "runtime_config",
    )
    await applied(
        promotion_stub,
        model,
        spec(serving_code=pb.ServingCode(repository="https://git.example/acme/serve", commit="abc1234")),
        "serving_code",
    )
    assert await count_rows(promotion_settings.pg_dsn, count_versions, model) == 2
    fourth = await current(promotion_stub, model)
    assert fourth.revision == 4 and fourth.runtime_config == '{"batch_size":16,"default_input":0.5}'

    # Rollback restores revision 1 exactly, as a new revision, through the same policy.
    rollback = await promotion_stub.RollbackDeployment(
        pb.RollbackDeploymentRequest(
            model=model, environment="prod", revision=1, reason="revision 4 is slow"
        ),
        metadata=auth("alice"),
    )
    assert rollback.state == State.STATE_PENDING and rollback.rollback
    await approve(promotion_stub, rollback.name, "bob")
    restored = await current(promotion_stub, model)
    assert (restored.revision, restored.restored_revision) == (5, 1)
    assert without_revision(restored) == without_revision(first)

    history = await revisions(promotion_stub, model)
    assert [r.deployment.revision for r in history] == [5, 4, 3, 2, 1]
    assert history[0].reason == "revision 4 is slow" and history[0].deployment.restored_revision == 1
    assert history[3].reason == "fix a default for a missing input"
    assert {(r.requester, r.applied_by) for r in history} == {("alice", "bob")}
    # GetPointers shows the same current revision.
    pointers = await promotion_stub.GetPointers(pb.GetPointersRequest(model=model), metadata=auth("victor"))
    assert [without_revision(d) for d in pointers.deployments] == [without_revision(first)]

    # Rolling back to what is already current changes nothing.
    error = await rpc_error(
        promotion_stub.RollbackDeployment(
            pb.RollbackDeploymentRequest(model=model, environment="prod", revision=1, reason="again"),
            metadata=auth("alice"),
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION

    # A replay of the promotion topic reproduces the deployment history, row for row.
    pool = await asyncpg.create_pool(promotion_settings.pg_dsn, min_size=1, max_size=2)
    try:
        handler = PromotionProjection()
        topic = promotion_settings.kafka.topic("modelreg.promotion.v1")
        async with pool.acquire() as conn:
            until = {
                r["partition"]: r["next_offset"]
                for r in await conn.fetch(
                    "SELECT partition, next_offset FROM promotion.checkpoints WHERE topic = $1", topic
                )
            }
        await rebuild(
            pool,
            schema="deploy_replay",
            topic=topic,
            handler=handler,
            kafka=promotion_settings.kafka,
            until=until,
        )
        async with pool.acquire() as conn:
            live = await digest(conn, "promotion", handler.read_model_tables)
            replayed = await digest(conn, "deploy_replay", handler.read_model_tables)
            rows = await conn.fetchval(
                "SELECT count(*) FROM deploy_replay.transitions"
                " WHERE model = $1 AND 'deployments/prod' = ANY(targets)",
                model,
            )
            await conn.execute("DROP SCHEMA deploy_replay CASCADE")
        assert rows == 5
        assert replayed == live
    finally:
        await pool.close()


async def test_bad_deployments_are_refused_with_the_field(promotion_stub, facts: Facts) -> None:
    model = new_model()
    await versions(facts, model, 1)
    cases = [
        (
            spec(split={1: 100}, runtime_config='{"batch_size": 0}', config_schema=SCHEMA),
            "deployment.runtime_config",
        ),
        (spec(split={1: 100}, runtime_config="[1]"), "deployment.runtime_config"),
        (spec(split={1: 100}, runtime_config="{nope"), "deployment.runtime_config"),
        (spec(split={1: 100}, config_schema='{"type": 7}'), "deployment.config_schema"),
        (
            spec(split={1: 100}, serving_code=pb.ServingCode(image="acme/serve:latest")),
            "deployment.serving_code.image",
        ),
        (
            spec(split={1: 100}, serving_code=pb.ServingCode(repository="r", commit="main")),
            "deployment.serving_code.commit",
        ),
        (spec(split={1: 60}), "deployment.weights"),
    ]
    for deployment, field in cases:
        error = await rpc_error(update(promotion_stub, model, deployment))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert violations(error) == [field], error.details()
    error = await rpc_error(update(promotion_stub, model, spec(split={1: 100}), "weights", "colour"))
    assert violations(error) == ["update_mask.paths[1]"]
    error = await rpc_error(update(promotion_stub, model, spec(split={1: 100}), reason=" "))
    assert violations(error) == ["reason"]
    # Code alone for an environment that has no split yet.
    error = await rpc_error(
        update(promotion_stub, model, spec(serving_code=pb.ServingCode(image=IMAGE_1)), "serving_code")
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no traffic split" in (error.details() or "")
    # Nothing was recorded.
    assert await revisions(promotion_stub, model) == []
    error = await rpc_error(current(promotion_stub, model))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def report(stub, model: str, revision: int, state: Report.State.ValueType, detail: str = "", **kw):
    return await stub.ReportDeployment(
        pb.ReportDeploymentRequest(
            report=Report(model=model, environment="prod", revision=revision, state=state, detail=detail),
            **kw,
        ),
        metadata=auth("alice"),
    )


async def status_of(stub, model: str) -> dict[str, pb.EnvironmentStatus]:
    answer = await stub.GetDeploymentStatus(
        pb.GetDeploymentStatusRequest(model=model), metadata=auth("victor")
    )
    return {e.environment: e for e in answer.environments}


async def test_acknowledgements_against_the_desired_revision(promotion_stub, facts: Facts) -> None:
    model = new_model()
    await versions(facts, model, 1, 2)
    await applied(promotion_stub, model, spec(split={1: 100}, serving_code=pb.ServingCode(image=IMAGE_1)))
    status = await status_of(promotion_stub, model)
    assert status["prod"].drift and status["prod"].drift_reason.startswith("nothing acknowledged")
    assert not status["prod"].HasField("acknowledged")

    first = await report(promotion_stub, model, 1, Report.STATE_SUCCEEDED, request_id="ack-1")
    assert first.reporter == "alice" and first.HasField("report_time")
    again = await report(promotion_stub, model, 1, Report.STATE_SUCCEEDED, request_id="ack-1")
    assert again == first  # a retry gets the original answer
    status = await status_of(promotion_stub, model)
    assert not status["prod"].drift and status["prod"].acknowledged.revision == 1

    # A new desired revision: the acknowledged one is behind until the CD system catches up.
    await applied(promotion_stub, model, spec(split={1: 50, 2: 50}), "weights")
    status = await status_of(promotion_stub, model)
    assert status["prod"].drift and status["prod"].desired.revision == 2
    assert status["prod"].drift_reason == "revision 1 acknowledged, revision 2 desired"
    await report(promotion_stub, model, 2, Report.STATE_IN_PROGRESS)
    assert "rolling out" in (await status_of(promotion_stub, model))["prod"].drift_reason
    await report(promotion_stub, model, 2, Report.STATE_FAILED, detail="readiness probe failed")
    status = await status_of(promotion_stub, model)
    assert status["prod"].drift and "readiness probe failed" in status["prod"].drift_reason
    await report(promotion_stub, model, 2, Report.STATE_SUCCEEDED)
    assert not (await status_of(promotion_stub, model))["prod"].drift

    # Reports of what does not exist are refused, and change nothing.
    error = await rpc_error(report(promotion_stub, model, 3, Report.STATE_SUCCEEDED))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    error = await rpc_error(
        promotion_stub.ReportDeployment(
            pb.ReportDeploymentRequest(report=Report(model=model, environment="prod", revision=2)),
            metadata=auth("alice"),
        )
    )
    assert violations(error) == ["report.state"]
    error = await rpc_error(
        promotion_stub.ReportDeployment(
            pb.ReportDeploymentRequest(
                report=Report(model=model, environment="staging", revision=1, state=Report.STATE_SUCCEEDED)
            ),
            metadata=auth("alice"),
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    # A viewer may read the status but not report.
    error = await rpc_error(
        promotion_stub.ReportDeployment(
            pb.ReportDeploymentRequest(
                report=Report(model=model, environment="prod", revision=2, state=Report.STATE_SUCCEEDED)
            ),
            metadata=auth("victor"),
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not (await status_of(promotion_stub, model))["prod"].drift


async def test_sdk_and_cli_change_serving_code_and_read_status(
    promotion_host: ServiceHost, promotion_stub, facts: Facts
) -> None:
    name = new_model()
    uri = f"{name.split('/')[1]}/{name.split('/')[3]}"
    await versions(facts, name, 1)
    async with client(promotion_host, "alice") as registry:
        first = await registry.promotion.update_deployment(
            uri, "prod", weights={1: 100}, image=IMAGE_1, config={"batch_size": 4}, reason="first"
        )
        await approve(promotion_stub, first.name, "bob")
    # The CLI changes only the serving code; bob approves; the CLI shows revision 2 and its history.
    result = await cli(
        promotion_host,
        "alice",
        "deployments",
        "set",
        uri,
        "--env",
        "prod",
        "--image",
        IMAGE_2,
        "--reason",
        "hotfix",
        "--output",
        "json",
    )
    assert result.returncode == 0, result.stderr
    await approve(promotion_stub, json.loads(result.stdout)["name"], "bob")
    shown = await cli(promotion_host, "victor", "deployments", "show", uri, "--env", "prod", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["serving_code"]["image"] == IMAGE_2
    assert json.loads(shown.stdout)["runtime_config"] == '{"batch_size":4}'
    table = await cli(promotion_host, "victor", "deployments", "history", uri, "--env", "prod")
    assert table.returncode == 0, table.stderr
    assert "hotfix" in table.stdout and "first" in table.stdout
    # The CD system acknowledges revision 1 only: the status shows drift, then none.
    reported = await cli(
        promotion_host,
        "alice",
        "deployments",
        "report",
        uri,
        "--env",
        "prod",
        "--state",
        "succeeded",
        "--revision",
        "1",
    )
    assert reported.returncode == 0, reported.stderr
    status = await cli(promotion_host, "victor", "deployments", "status", uri)
    assert status.returncode == 0, status.stderr
    assert "revision 1 acknowledged, revision 2 desired" in status.stdout
    async with client(promotion_host, "alice") as registry:
        await registry.promotion.report_deployment(uri, "prod", "SUCCEEDED", revision=2)
        answer = await registry.promotion.deployment_status(uri)
        assert [(e.environment, e.drift) for e in answer.environments] == [("prod", False)]
        # Rolling back by the CLI, in one call.
        back = await cli(
            promotion_host,
            "alice",
            "deployments",
            "rollback",
            uri,
            "--env",
            "prod",
            "--reason",
            "r2 bad",
            "-o",
            "json",
        )
        assert back.returncode == 0, back.stderr
        await approve(promotion_stub, json.loads(back.stdout)["name"], "bob")
        restored = await registry.promotion.deployment(uri, "prod")
        assert (restored.revision, restored.restored_revision, restored.serving_code.image) == (3, 1, IMAGE_1)
        assert [r.reason for r in await registry.promotion.deployment_history(uri, "prod")] == [
            "r2 bad",
            "hotfix",
            "first",
        ]

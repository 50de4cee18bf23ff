"""Issue 20 across the five real services (the stack of test_ops: a database and topic prefix of its
own): `modelreg evaluations list ns/m@production` resolves the stage (and an alias) through promotion
and shows that version only; a replay from offset 0 reproduces the evaluations, degradation thresholds,
deployment revisions and a rollback exactly, and the evaluation tables are part of the digest."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from modelreg.cli.ops import read_model
from modelreg.client import AsyncRegistry
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.projections.shadow import replay_into_shadow
from tests.helpers import run_cli_async
from tests.integration import test_ops
from tests.integration.test_ops import Stack, ops

stack = test_ops.stack  # the five services on a database and topic prefix of this module's own

State = promotion_pb2.TransitionRequest
GOLDEN = ("s3://data/golden-v3", "sha256:" + "a" * 64)
IMAGE_1 = "ghcr.io/acme/serve@sha256:" + "1" * 64
IMAGE_2 = "ghcr.io/acme/serve@sha256:" + "2" * 64


def approver(stack: Stack) -> AsyncRegistry:
    return AsyncRegistry(stack.endpoints, bearer_token="t-bob", retries=6)


async def applied(stack: Stack, created: promotion_pb2.TransitionRequest) -> promotion_pb2.TransitionRequest:
    """A request applied: at once, or once bob approves it (the default policy protects PRODUCTION
    and `deployments/*`)."""
    if created.state == State.STATE_APPLIED:
        return created
    assert created.state == State.STATE_PENDING, created
    async with approver(stack) as bob:
        done = await bob.promotion.approve(created.name, comment="lgtm")
    assert done.state == State.STATE_APPLIED, done
    return done


async def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (off the event loop serving the stack), pointed at the stack."""
    env = {
        **os.environ,
        **{f"MODELREG_{name.upper()}_ADDR": f"127.0.0.1:{host.port}" for name, host in stack.hosts.items()},
        "MODELREG_TOKEN": "t-alice",
        "COLUMNS": "220",
    }
    return await run_cli_async(*args, env=env)


def table_rows(text: str, title: str) -> list[list[str]]:
    """The body rows of the rich table printed under `title`, as lists of stripped cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if title in line)
    rows: list[list[str]] = []
    header_seen = False
    for line in lines[start + 1 :]:
        if line.startswith("└"):
            break
        if line.startswith("┡"):  # under the header
            header_seen = True
            continue
        if header_seen and line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


async def a_model(stack: Stack, versions: int) -> str:
    uri = f"ev{uuid.uuid4().hex[:8]}/m"
    async with stack.registry() as registry:
        await registry.catalog.register_model(uri, description="issue 20")
        for _ in range(versions):
            await registry.versioning.create_version(uri, bump="minor")
    return uri


async def test_cli_lists_the_evaluations_of_the_version_a_stage_or_alias_names(stack: Stack) -> None:
    uri = await a_model(stack, versions=2)
    now = datetime.now(UTC).replace(microsecond=0)
    async with stack.registry() as registry:
        await applied(stack, await registry.promotion.request_promotion(uri, {"PRODUCTION": 1}))
        await registry.promotion.set_alias(uri, "challenger", 2)
        # Through the stage: the SDK resolves @production to version 1 on the way in, too.
        for day, auc in enumerate([0.91, 0.90, 0.86, 0.80]):
            await registry.lineage.record_evaluation(
                f"{uri}@production",
                {"auc": auc},
                kind="PRODUCTION",
                window=(now - timedelta(days=5 - day), now - timedelta(days=4 - day)),
                environment="prod",
                evaluate_time=now - timedelta(days=4 - day),
                tool="evidently",
            )
        # Version 2's evaluations, on a value none of version 1's has, must stay out of its listing.
        for day, auc in enumerate([0.777, 0.779]):
            await registry.lineage.record_evaluation(
                f"{uri}/2", {"auc": auc}, dataset=GOLDEN, evaluate_time=now - timedelta(days=3 - day)
            )
        # Read-your-writes: by the time these return, lineage and promotion have folded the writes,
        # so the CLI (a fresh client with no consistency token) reads the same.
        assert len(await registry.lineage.list_evaluations(uri)) == 6
        assert (await registry.promotion.pointers(uri)).aliases["challenger"] == 2

    result = await cli(stack, "evaluations", "list", f"{uri}@production", "--metric", "auc")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = table_rows(result.stdout, f"evaluations of {uri}@production")
    # evaluated, version, kind, on, auc, degraded, tool/run: version 1's four, oldest first.
    assert [(r[1], r[2], r[4]) for r in rows] == [
        ("1", "PRODUCTION", "0.91"),
        ("1", "PRODUCTION", "0.9"),
        ("1", "PRODUCTION", "0.86"),
        ("1", "PRODUCTION", "0.8"),
    ], result.stdout
    assert all(r[3].startswith("prod ") and r[6] == "evidently" for r in rows), rows
    trend = table_rows(result.stdout, "over time (oldest -> newest)")
    # version, metric, trend, first, last, min, max, n: one line, version 1's falling auc.
    assert trend == [["1", "auc", "█▇▅▁", "0.91", "0.8", "0.8", "0.91", "4"]], result.stdout
    assert "0.777" not in result.stdout and "golden-v3" not in result.stdout

    # An alias the same way, recording through the CLI too: version 2 only.
    recorded = await cli(
        stack, "evaluations", "record", f"{uri}@challenger", "-m", "auc=0.781", "--dataset", GOLDEN[0],
        "--digest", GOLDEN[1], "-o", "json",
    )  # fmt: skip
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert json.loads(recorded.stdout)["model_version"].endswith("/models/m/versions/2")
    async with stack.registry() as registry:
        deadline = asyncio.get_running_loop().time() + 60
        while len(await registry.lineage.list_evaluations(f"{uri}/2")) < 3:
            assert asyncio.get_running_loop().time() < deadline, "the CLI's evaluation was not projected"
            await asyncio.sleep(0.2)
    challenger = await cli(stack, "evaluations", "list", f"{uri}@challenger")
    assert challenger.returncode == 0, challenger.stdout + challenger.stderr
    rows = table_rows(challenger.stdout, f"evaluations of {uri}@challenger")
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        ("2", "OFFLINE", GOLDEN[0], "0.777"),
        ("2", "OFFLINE", GOLDEN[0], "0.779"),
        ("2", "OFFLINE", GOLDEN[0], "0.781"),
    ], challenger.stdout
    assert [r[:2] for r in table_rows(challenger.stdout, "over time")] == [["2", "auc"]]

    missing = await cli(stack, "evaluations", "list", f"{uri}@nosuchalias")
    assert missing.returncode == 3 and "nosuchalias" in missing.stderr, missing.stdout + missing.stderr
    assert "Traceback" not in missing.stderr


async def test_a_replay_reproduces_evaluations_thresholds_and_deployment_history(stack: Stack) -> None:
    uri = await a_model(stack, versions=2)
    now = datetime.now(UTC).replace(microsecond=0)
    async with stack.registry() as registry:
        await applied(stack, await registry.promotion.request_promotion(uri, {"PRODUCTION": 1}))
        await registry.lineage.set_degradation_thresholds(uri, {"auc": (">=", 0.85)})
        recorded = []
        # The second crosses the threshold, the third heals, the fourth crosses again (still breaching).
        for day, auc in enumerate([0.91, 0.80, 0.92, 0.79]):
            recorded.append(
                await registry.lineage.record_evaluation(
                    f"{uri}@production",
                    {"auc": auc},
                    kind="PRODUCTION",
                    window=(now - timedelta(days=5 - day), now - timedelta(days=4 - day)),
                    environment="prod",
                    evaluate_time=now - timedelta(days=4 - day),
                )
            )
        assert [list(e.degraded_metrics) for e in recorded] == [[], ["auc"], [], ["auc"]]
        await registry.lineage.record_evaluation(f"{uri}/2", {"auc": 0.95}, dataset=GOLDEN)
        # Deployment revisions: a split, then serving code only, then config only, then a rollback.
        await applied(
            stack,
            await registry.promotion.update_deployment(
                uri, "prod", weights={1: 90, 2: 10}, image=IMAGE_1, config={"batch": 4}, reason="first"
            ),
        )
        await applied(
            stack, await registry.promotion.update_deployment(uri, "prod", image=IMAGE_2, reason="fix")
        )
        await applied(
            stack, await registry.promotion.update_deployment(uri, "prod", config={"batch": 8}, reason="tune")
        )
        await applied(
            stack, await registry.promotion.rollback_deployment(uri, "prod", revision=2, reason="back")
        )
        history = await registry.promotion.deployment_history(uri, "prod")
        assert [r.deployment.revision for r in history] == [4, 3, 2, 1]
        assert history[0].deployment.restored_revision == 2
        assert len(await registry.lineage.list_evaluations(uri)) == 5
        assert (await registry.promotion.deployment(uri, "prod")).revision == 4

    evaluation_tables = {"evaluations", "evaluation_breaches", "degradation_thresholds"}
    pool = await asyncpg.create_pool(stack.settings.pg_dsn, min_size=1, max_size=4)
    try:
        for service, covered in (
            ("lineage", evaluation_tables),
            ("promotion", {"pointers", "transitions", "requests", "version_evaluations"}),
        ):
            model = read_model(service, stack.settings.kafka)
            assert covered <= set(model.tables), model.tables
            shadow = f"{model.schema}_shadow"
            result = await replay_into_shadow(pool, model, stack.settings.kafka, shadow=shadow, swap=False)
            assert result.matches, (service, result.difference)
            assert result.live_digest == result.shadow_digest
            empty = [t for t in covered if not result.live_digest[t]]
            assert not empty, f"{service}: no rows in {empty}"  # the digests cover rows, not empty tables
            async with pool.acquire() as conn:
                await conn.execute(f'DROP SCHEMA "{shadow}" CASCADE')
        # The replayed deployment history is the live one (not merely equal digests of nothing).
        async with pool.acquire() as conn:
            name = f"namespaces/{uri.replace('/', '/models/', 1)}"
            assert (
                await conn.fetchval("SELECT count(*) FROM promotion.transitions WHERE model = $1", name) >= 5
            )

            # A changed evaluation row: the replay reports a mismatch naming the evaluations table.
            evaluation_id = recorded[1].name.rsplit("/", 1)[1]
            original = await conn.fetchval(
                "SELECT tool FROM lineage.evaluations WHERE id = $1::uuid", evaluation_id
            )
            await conn.execute(
                "UPDATE lineage.evaluations SET tool = 'tampered' WHERE id = $1::uuid", evaluation_id
            )
            try:
                tampered = await ops(stack, "replay", "lineage", "-o", "json")
            finally:
                await conn.execute(
                    "UPDATE lineage.evaluations SET tool = $2 WHERE id = $1::uuid", evaluation_id, original
                )
            assert tampered.returncode == 10, tampered.stdout + tampered.stderr
            [report] = json.loads(tampered.stdout)
            assert report["matches"] is False and report["swapped"] is False
            assert report["difference"]["table"] == "evaluations"
            assert report["difference"]["key"] == {"id": evaluation_id}
            assert "tampered" in report["difference"]["live"]
            assert "tampered" not in report["difference"]["replayed"]
            await conn.execute('DROP SCHEMA IF EXISTS "lineage_shadow" CASCADE')
    finally:
        await pool.close()

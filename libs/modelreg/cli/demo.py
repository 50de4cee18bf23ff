"""`modelreg demo`: the registry's main path, end to end, against `modelreg dev`.

Register a model, version it with a semantic bump and real artifact bytes,
record its lineage, promote it to production with an approval, ship a second
version, roll production back, download what production serves, and show the
history. Alice (who builds models) and Bob (who approves) are the two demo
principals `modelreg dev` creates. Every step is checked, so a failure exits
non-zero: the demo doubles as a smoke test.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from modelreg.client import Endpoints, Registry
from modelreg.gen.common.v1 import signature_pb2
from modelreg.gen.lineage.v1 import lineage_pb2
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.gen.versioning.v1 import versioning_pb2


class DemoFailed(RuntimeError):
    pass


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(what)


def demo_tokens(home: Path) -> dict[str, str]:
    written = home / "endpoints.json"
    if not written.exists():
        raise DemoFailed(f"no {written}: start the registry with `modelreg dev` first")
    tokens = json.loads(written.read_text()).get("demo_tokens") or {}
    if not {"alice", "bob"} <= tokens.keys():
        raise DemoFailed("the running `modelreg dev` has no demo principals; restart it")
    return tokens


def write_artifacts(root: Path, seed: str) -> None:
    (root / "model").mkdir(parents=True)
    (root / "model" / "weights.bin").write_bytes(hashlib.sha256(seed.encode()).digest() * 131072)  # 4 MiB
    (root / "config.json").write_text(json.dumps({"seed": seed, "layers": [64, 32, 1]}))


def lineage_for(version: int, data_digest: str) -> lineage_pb2.LineageRecord:
    now = datetime.now(UTC)
    run = lineage_pb2.TrainingRun(id=f"run-{version}-{secrets.token_hex(3)}", orchestrator="airflow")
    run.start_time.FromDatetime(now)
    run.end_time.FromDatetime(now)
    return lineage_pb2.LineageRecord(
        datasets=[
            lineage_pb2.Dataset(
                uri="s3://demo-data/churn/train.parquet",
                digest=data_digest,
                row_count=120_000,
                role=lineage_pb2.DATASET_ROLE_TRAIN,
            )
        ],
        code=[
            lineage_pb2.CodeRef(
                repo="https://git.example/ml/churn", commit=f"{version:040x}", path="train.py"
            )
        ],
        config=lineage_pb2.Config(params={"learning_rate": "0.01", "epochs": str(10 * version)}),
        environment=lineage_pb2.Environment(python_version="3.11.7", framework="sklearn"),
        training_run=run,
    )


def run_demo(*, model: str | None, console: Console, home: Path) -> None:
    started = time.perf_counter()
    tokens = demo_tokens(home)
    endpoints = Endpoints.from_env()
    name = model or f"churn-{secrets.token_hex(2)}"
    uri = f"demo/{name}"
    float32 = signature_pb2.TensorSpec.DATA_TYPE_FLOAT32
    signature = signature_pb2.Signature(
        inputs=[signature_pb2.TensorSpec(name="features", dtype=float32, shape=[-1, 32])],
        outputs=[signature_pb2.TensorSpec(name="churn_probability", dtype=float32, shape=[-1])],
    )

    def step(text: str) -> None:
        console.print(f"[bold cyan]{time.perf_counter() - started:6.2f}s[/] {text}")

    with (
        Registry(endpoints, bearer_token=tokens["alice"]) as alice,
        Registry(endpoints, bearer_token=tokens["bob"]) as bob,
        tempfile.TemporaryDirectory() as scratch,
    ):
        alice.catalog.register_model(
            uri, description="# Churn\nPredicts who leaves next month.", tags={"team": "growth"}
        )
        step(f"alice registered [bold]modelreg://{uri}[/]")

        alice.promotion.set_promotion_policy(
            promotion_pb2.PromotionPolicy(
                parent=f"namespaces/demo/models/{name}",
                protected=["PRODUCTION", "deployments/*"],
                required_approvals=1,
                separation_of_duties=True,
                required_checks=[
                    promotion_pb2.RequiredCheck(kind=promotion_pb2.RequiredCheck.KIND_VERSION_READY),
                    promotion_pb2.RequiredCheck(kind=promotion_pb2.RequiredCheck.KIND_SIGNATURE_PRESENT),
                    promotion_pb2.RequiredCheck(kind=promotion_pb2.RequiredCheck.KIND_LINEAGE_RECORDED),
                    promotion_pb2.RequiredCheck(
                        kind=promotion_pb2.RequiredCheck.KIND_METRIC_THRESHOLD,
                        metric="auc",
                        comparison=promotion_pb2.RequiredCheck.COMPARISON_GREATER_OR_EQUAL,
                        threshold=0.85,
                    ),
                ],
                emergency_rollback=True,
            )
        )
        step(
            "alice set the policy: PRODUCTION needs 1 approval by someone else,"
            " READY, a signature, lineage and auc >= 0.85"
        )

        versions = []
        for number, (bump, auc) in enumerate([("major", 0.91), ("minor", 0.93)], start=1):
            artifacts = Path(scratch) / f"v{number}"
            write_artifacts(artifacts, seed=f"{name}-{number}")
            version = alice.versioning.create_version(
                uri,
                bump=bump,
                artifacts=artifacts,
                metrics={"auc": auc},
                params={"learning_rate": "0.01"},
                framework="sklearn",
                signature=signature,
                progress=True,
            )
            expect(version.state == versioning_pb2.ModelVersion.STATE_READY, f"v{number} is not READY")
            versions.append(version)
            step(
                f"alice created version {version.version} = v{version.semver} ({bump} bump),"
                f" READY, {len(version.files)} files"
            )
            alice.lineage.record_lineage(
                f"{uri}/{version.version}", lineage_for(version.version, "sha256:" + f"{number:064x}")
            )
            step(f"alice recorded lineage of v{version.semver}: dataset, code, config, environment, run")

            request = alice.promotion.request_promotion(
                uri,
                {"PRODUCTION": version.version, "champion": version.version},
                comment=f"ship v{version.semver}",
            )
            expect(
                request.state == promotion_pb2.TransitionRequest.STATE_PENDING,
                "PRODUCTION should need approval",
            )
            step(f"alice requested PRODUCTION and champion -> {version.version}: pending approval")
            bob.observe(alice.consistency_token)
            approved = bob.promotion.approve(request.name, comment="metrics and lineage look good")
            expect(
                approved.state == promotion_pb2.TransitionRequest.STATE_APPLIED, "approval should apply it"
            )
            alice.observe(bob.consistency_token)
            production = alice.promotion.pointers(uri).stages["PRODUCTION"]
            step(f"bob approved: PRODUCTION is now version {production}")

        rollback = alice.promotion.rollback(uri, "PRODUCTION", reason="latency regression in v1.1.0")
        bob.observe(alice.consistency_token)
        if rollback.state == promotion_pb2.TransitionRequest.STATE_PENDING:
            rollback = bob.promotion.approve(rollback.name, comment="confirmed the regression")
            alice.observe(bob.consistency_token)
        expect(rollback.state == promotion_pb2.TransitionRequest.STATE_APPLIED, "rollback was not applied")
        production = alice.promotion.pointers(uri).stages["PRODUCTION"]
        expect(production == versions[0].version, f"rollback left PRODUCTION at {production}")
        step(f"alice rolled PRODUCTION back to version {production} (approved by bob)")

        served = alice.versioning.download(f"{uri}@production", Path(scratch) / "served", progress=True)
        expect(
            (served / "model" / "weights.bin").read_bytes()
            == (Path(scratch) / "v1" / "model" / "weights.bin").read_bytes(),
            "the production download is not v1's bytes",
        )
        step(f"downloaded {uri}@production and verified every sha256")

        history = Table(title=f"history of modelreg://{uri}")
        for column in ("applied", "changes", "requested by", "approved by", "comment"):
            history.add_column(column)
        for entry in alice.promotion.history(uri):
            changes = ", ".join(
                f"{c.pointer}: {c.previous or '-'} -> {c.version or '-'}" for c in entry.changes
            )
            approvers = ", ".join(a.approver for a in entry.approvals) or entry.applied_by
            comment = f"rollback: {entry.rollback_reason}" if entry.rollback else entry.comment
            history.add_row(
                entry.apply_time.ToDatetime().strftime("%H:%M:%S"),
                changes,
                entry.requester,
                approvers,
                comment,
            )
        console.print(history)
    step("[bold green]demo complete[/]")


def default_home() -> Path:
    return Path(os.environ.get("MODELREG_HOME", Path.home() / ".modelreg" / "dev"))

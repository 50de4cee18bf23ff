"""The gateway with its web UI on a private fleet (all five services, a moto S3 server),
served by uvicorn on a port of its own, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelreg.cli.demo import lineage_for, write_artifacts
from modelreg.client import AsyncRegistry
from modelreg.client.connection import Endpoints
from modelreg.devstack import LocalStack
from modelreg.gateway.app import create_app
from modelreg.gateway.settings import GatewaySettings
from modelreg.gen.common.v1 import signature_pb2
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.runtime.settings import Settings
from tests.fleet import Fleet, running_fleet
from tests.helpers import serving_asgi, unique
from tests.integration.promotion.conftest import promotion_env

CHROMIUM = os.environ.get("MODELREG_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("MODELREG_TEST_OUTPUT", Path(__file__).parents[3] / "test-output")) / "ui"


@dataclass
class Seeded:
    namespace: str
    model: str
    pending_request: str
    """The id of alice's pending request to move PRODUCTION to v2."""
    dataset_uri: str

    @property
    def uri(self) -> str:
        return f"{self.namespace}/{self.model}"


@dataclass
class UiStack:
    fleet: Fleet
    url: str
    endpoints: Endpoints
    seeded: Seeded

    def registry(self, principal: str) -> AsyncRegistry:
        return AsyncRegistry(self.endpoints, bearer_token=f"t-{principal}")


async def seed(endpoints: Endpoints) -> Seeded:
    """A model with two READY versions (files, metrics, a signature, lineage), v1 in
    PRODUCTION, and alice's pending request to move PRODUCTION to v2 (one approval by
    someone else required)."""
    namespace, model = unique("ui"), "churn"
    uri = f"{namespace}/{model}"
    float32 = signature_pb2.TensorSpec.DATA_TYPE_FLOAT32
    signature = signature_pb2.Signature(
        inputs=[signature_pb2.TensorSpec(name="features", dtype=float32, shape=[-1, 32])]
    )
    async with (
        AsyncRegistry(endpoints, bearer_token="t-root") as root,
        AsyncRegistry(endpoints, bearer_token="t-alice") as alice,
        AsyncRegistry(endpoints, bearer_token="t-bob") as bob,
    ):
        await root.catalog.create_namespace(namespace)
        # Alice may approve here, so only separation of duties stops her approving her own request.
        await root.access.grant(namespace, "alice", "approver")
        await alice.catalog.register_model(
            uri, description="Predicts who leaves next month.", tags={"team": "growth"}
        )
        await alice.catalog.register_model(f"{namespace}/fraud", tags={"team": "risk"})
        await root.promotion.set_promotion_policy(
            promotion_pb2.PromotionPolicy(
                parent=f"namespaces/{namespace}/models/{model}",
                protected=["PRODUCTION"],
                required_approvals=1,
                separation_of_duties=True,
            )
        )
        with tempfile.TemporaryDirectory() as scratch:
            for number, auc in ((1, 0.91), (2, 0.93)):
                artifacts = Path(scratch) / f"v{number}"
                write_artifacts(artifacts, seed=f"{uri}-{number}")
                await alice.versioning.create_version(
                    uri,
                    bump="minor",
                    artifacts=artifacts,
                    metrics={"auc": auc},
                    params={"lr": "0.01"},
                    signature=signature,
                    progress=False,
                )
                await alice.lineage.record_lineage(
                    f"{uri}/{number}", lineage_for(number, f"sha256:{number:064x}")
                )
        # How the versions performed: v2 offline on the golden set; v1 in production, past the
        # model's threshold once.
        await alice.lineage.set_degradation_thresholds(uri, {"auc": (">=", 0.9)})
        await alice.lineage.record_evaluation(
            f"{uri}/2",
            {"auc": 0.925},
            dataset=("s3://demo-data/churn/golden-v3.parquet", "sha256:" + "c" * 64),
            tool="evalkit",
            run="eval-2",
        )
        await alice.lineage.record_evaluation(
            f"{uri}/1",
            {"auc": 0.92},
            kind="PRODUCTION",
            dataset=("s3://demo-data/churn/live-week-1.parquet", "sha256:" + "d" * 64),
        )
        await alice.lineage.record_evaluation(
            f"{uri}/1",
            {"auc": 0.87},
            kind="PRODUCTION",
            dataset=("s3://demo-data/churn/live-week-2.parquet", "sha256:" + "e" * 64),
        )
        first = await alice.promotion.request_promotion(uri, {"PRODUCTION": 1}, comment="first release")
        await bob.promotion.approve(first.name, comment="looks good")
        # prod serves v1 and was acknowledged; then only its serving code changed: drift until reported.
        await alice.promotion.update_deployment(
            uri,
            "prod",
            reason="first rollout",
            weights={1: 100},
            image="registry.example/serve@sha256:" + "a" * 64,
        )
        await alice.promotion.report_deployment(uri, "prod", "SUCCEEDED", revision=1, detail="rolled out")
        await alice.promotion.update_deployment(
            uri,
            "prod",
            reason="default for a missing input",
            image="registry.example/serve@sha256:" + "b" * 64,
        )
        pending = await alice.promotion.request_promotion(uri, {"PRODUCTION": 2}, comment="better auc")
    return Seeded(namespace, model, pending.name.rsplit("/", 1)[-1], "s3://demo-data/churn/train.parquet")


@pytest.fixture(scope="module")
async def ui_stack(local_stack: LocalStack, settings: Settings) -> AsyncIterator[UiStack]:
    async with running_fleet(local_stack, settings) as fleet:
        endpoints = Endpoints(**{s: f"127.0.0.1:{h.port}" for s, h in fleet.hosts.items()})
        with promotion_env():  # the gateway's sign-in checks tokens as the services do
            app = create_app(GatewaySettings(endpoints=endpoints, timeout_s=30.0))
        async with serving_asgi(app) as url:
            yield UiStack(fleet, url, endpoints, await seed(endpoints))


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    assert await asyncio.to_thread(os.path.exists, CHROMIUM), (
        f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)"
    )
    await asyncio.to_thread(SCREENSHOTS.mkdir, parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()

"""The gateway on a private fleet (all five services, a moto S3 server), served by uvicorn
on a port of its own, and MLflow's real client pointed at it. One stack per test module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from modelreg.client.connection import Endpoints
from modelreg.devstack import LocalStack
from modelreg.gateway.app import create_app
from modelreg.gateway.settings import GatewaySettings
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.fleet import Fleet, running_fleet
from tests.helpers import environment, serving_asgi
from tests.integration.promotion.conftest import TOKENS

T = TypeVar("T")

NAMESPACE = "mlflow"
MLFLOW_ENV = {
    # The fleet's principals (tests/integration/promotion/conftest.py): alice is an editor.
    "MLFLOW_TRACKING_TOKEN": "t-alice",
    # A refusal is answered at once; MLflow's client would retry 5xx answers with backoff.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


@dataclass
class Gateway:
    fleet: Fleet
    url: str
    settings: GatewaySettings
    sources: Path
    """A directory the gateway may read create-model-version sources from."""

    async def run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking MLflow client call, off the event loop that serves the gateway."""
        return await asyncio.to_thread(call, *args, **kwargs)

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)


@pytest.fixture(scope="module")
def mlflow_env() -> Iterator[None]:
    with environment(MLFLOW_ENV):
        yield


@asynccontextmanager
async def serving_gateway(
    fleet: Fleet, sources: Path, events: ServiceHost | None = None
) -> AsyncIterator[Gateway]:
    """The gateway on a port of its own over `fleet` (and the events relay, when given)."""
    hosts = {**fleet.hosts, **({"events": events} if events is not None else {})}
    endpoints = Endpoints(**{s: f"127.0.0.1:{h.port}" for s, h in hosts.items()})
    gateway_settings = GatewaySettings(
        endpoints=endpoints, namespace=NAMESPACE, timeout_s=30.0, source_roots=(sources,)
    )
    # The gateway checks Basic usernames with the services' own credential settings.
    with environment({"MODELREG_AUTH_TOKENS": TOKENS}):
        app = create_app(gateway_settings)
    async with serving_asgi(app) as url:
        # As a pipeline is pointed at the gateway: MLflow's default URIs, read by
        # mlflow.register_model and mlflow.artifacts.download_artifacts.
        with environment({"MLFLOW_TRACKING_URI": url, "MLFLOW_REGISTRY_URI": url}):
            yield Gateway(fleet, url, gateway_settings, sources)


@pytest.fixture(scope="module")
async def gateway(
    local_stack: LocalStack, settings: Settings, mlflow_env: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    sources = tmp_path_factory.mktemp("mlflow-sources").resolve()
    async with running_fleet(local_stack, settings) as fleet, serving_gateway(fleet, sources) as gateway:
        yield gateway

"""The gateway's ASGI app: `create_app(settings)`.

Routers are mounted here, each under its own prefix: MLflow's registry REST API on
`/api/2.0/mlflow/` and `/ajax-api/2.0/mlflow/` (modelreg.gateway.mlflow), and the web UI
(modelreg.gateway.ui, at `/`). A router reaches the services through
`backend_of(request)`, the process's one gRPC connection (modelreg.gateway.backend).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request

from modelreg.gateway.backend import Backend
from modelreg.gateway.mlflow.routes import install as install_mlflow
from modelreg.gateway.settings import GatewaySettings
from modelreg.gateway.ui import install as install_ui


def backend_of(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def create_app(settings: GatewaySettings | None = None, *, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The app; `routers` are mounted as they are (their own prefixes), after MLflow's API."""
    settings = settings or GatewaySettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.backend.close()

    app = FastAPI(
        title="modelreg gateway",
        summary="MLflow's model registry REST API 2.0 over the modelreg services",
        version="2.0",
        docs_url="/docs",
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.backend = Backend(settings)

    @app.get("/health", tags=["gateway"], summary="Liveness: the gateway answers (it holds no state)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    install_mlflow(app)
    for router in routers:
        app.include_router(router)
    install_ui(app)
    return app

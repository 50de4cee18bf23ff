"""MLflow's registry REST API 2.0 handlers, mounted on /api/2.0/mlflow/ and /ajax-api/2.0/mlflow/.

Wire rules as MLflow's server: GET takes query parameters, POST, PATCH and DELETE a JSON body;
errors are `{"error_code", "message"}` with MLflow's codes and statuses (mlflow/errors.py).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from modelreg.client import errors as sdk
from modelreg.gateway.backend import Backend
from modelreg.gateway.mlflow import artifacts
from modelreg.gateway.mlflow.artifacts import base_url
from modelreg.gateway.mlflow.errors import MlflowError, from_registry, invalid, mlflow_error_response
from modelreg.gateway.mlflow.service import MlflowRegistry
from modelreg.gateway.mlflow.webhooks import MlflowWebhooks
from modelreg.grpcutil.auth import Authenticator

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
TOKEN_HEADER = "modelreg-consistency-token"


class MlflowRoute(APIRoute):
    """Every answer in MLflow's wire format: the caller's credential is passed on to the
    services, their refusals become MLflow's error codes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            backend: Backend = request.app.state.backend
            try:
                bearer = bearer_of(request, request.app.state.authenticator)
                with backend.caller(bearer, request.headers.get(TOKEN_HEADER)):
                    response = await handler(request)
            except MlflowError as error:
                return mlflow_error_response(error)
            except sdk.RegistryError as error:
                return mlflow_error_response(from_registry(error))
            except RequestValidationError as error:
                return mlflow_error_response(invalid(_validation_message(error)))
            if backend.connection.token.required:
                response.headers[TOKEN_HEADER] = backend.connection.token.encode()
            return response

        return route


def _validation_message(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ())[1:]) or "request"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(problems)


def bearer_of(request: Request, authenticator: Authenticator | None) -> str | None:
    """The bearer token to call the services with: MLFLOW_TRACKING_TOKEN arrives as
    `Bearer <token>`; MLFLOW_TRACKING_USERNAME/PASSWORD as Basic, whose password is the
    user's registry token and whose username must be the principal that token names."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() != "basic":
        raise MlflowError("UNAUTHENTICATED", "Unsupported authorization scheme: use Bearer or Basic")
    try:
        username, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise MlflowError("UNAUTHENTICATED", "Malformed Basic credentials") from None
    if not password:
        raise MlflowError("UNAUTHENTICATED", "Basic credentials need the user's token as the password")
    if authenticator is not None:
        try:
            principal = authenticator.authenticate(f"Bearer {password}")
        except Exception as error:  # modelreg.errors.Unauthenticated, with the reason
            raise MlflowError("UNAUTHENTICATED", str(error)) from None
        if principal != "anonymous" and principal != username:
            raise MlflowError(
                "UNAUTHENTICATED", f"The token is not {username!r}'s: the username must be its principal"
            )
    return password


async def args_of(request: Request) -> dict[str, Any]:
    """GET: the query parameters (a repeated one as a list); otherwise the JSON body."""
    if request.method == "GET":
        query: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key in query:
                previous = query[key]
                query[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                query[key] = value
        return query
    body = await request.body()
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise invalid("Malformed JSON body") from None
    if not isinstance(parsed, dict):
        raise invalid("The request body must be a JSON object")
    return parsed


def registry_of(request: Request) -> MlflowRegistry:
    registry: MlflowRegistry = request.app.state.mlflow
    return registry


ENDPOINTS: list[tuple[str, list[str], str, str]] = [
    ("/registered-models/create", ["POST"], "create_registered_model", "Create a registered model"),
    ("/registered-models/rename", ["POST"], "rename_registered_model", "Rename a registered model"),
    ("/registered-models/update", ["PATCH"], "update_registered_model", "Update a model's description"),
    ("/registered-models/delete", ["DELETE"], "delete_registered_model", "Delete a registered model"),
    ("/registered-models/get", ["GET"], "get_registered_model", "Get a registered model"),
    ("/registered-models/search", ["GET"], "search_registered_models", "Search registered models"),
    (
        "/registered-models/get-latest-versions",
        ["POST", "GET"],
        "get_latest_versions",
        "The latest version of a model in each stage",
    ),
    ("/registered-models/set-tag", ["POST"], "set_registered_model_tag", "Set a tag on a model"),
    ("/registered-models/delete-tag", ["DELETE"], "delete_registered_model_tag", "Delete a tag of a model"),
    ("/registered-models/alias", ["POST"], "set_registered_model_alias", "Point an alias at a version"),
    ("/registered-models/alias", ["DELETE"], "delete_registered_model_alias", "Delete an alias"),
    ("/registered-models/alias", ["GET"], "get_model_version_by_alias", "The version an alias points at"),
    ("/model-versions/create", ["POST"], "create_model_version", "Create a model version"),
    ("/model-versions/update", ["PATCH"], "update_model_version", "Update a version's description"),
    (
        "/model-versions/transition-stage",
        ["POST"],
        "transition_model_version_stage",
        "Move a version to a stage (Staging, Production, Archived, None)",
    ),
    ("/model-versions/delete", ["DELETE"], "delete_model_version", "Delete a model version"),
    ("/model-versions/get", ["GET"], "get_model_version", "Get a model version"),
    ("/model-versions/search", ["GET"], "search_model_versions", "Search model versions"),
    (
        "/model-versions/get-download-uri",
        ["GET"],
        "get_model_version_download_uri",
        "A URL the gateway serves the version's files at",
    ),
    ("/model-versions/set-tag", ["POST"], "set_model_version_tag", "Set a tag on a version"),
    ("/model-versions/delete-tag", ["DELETE"], "delete_model_version_tag", "Delete a tag of a version"),
]
"""MLflow's ModelRegistryService (mlflow/protos/model_registry.proto): path, methods, operation."""


def _handler(operation: str, method: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def handle(request: Request) -> JSONResponse:
        registry = registry_of(request)
        args = await args_of(request)
        if operation == "get_model_version_download_uri":
            url = base_url(request, registry.backend.settings.public_url)
            return JSONResponse(await registry.get_model_version_download_uri(args, url))
        call = getattr(registry, operation)
        return JSONResponse(await call(args))

    handle.__name__ = f"{operation}_{method.lower()}"
    return handle


def router() -> APIRouter:
    api = APIRouter(route_class=MlflowRoute, tags=["MLflow registry REST API 2.0"])
    for path, methods, operation, summary in ENDPOINTS:
        for method in methods:
            api.add_api_route(
                path,
                _handler(operation, method),
                methods=[method],
                summary=summary,
                description=f"MLflow's `{operation}`: "
                + ("query parameters" if method == "GET" else "a JSON body")
                + " as in MLflow's REST API 2.0.",
                operation_id=f"{operation}_{method.lower()}",
                response_class=JSONResponse,
            )
    return api


def webhooks_router() -> APIRouter:
    """MLflow's webhook endpoints (MLflow 3.3+) over the events relay (modelreg.gateway.mlflow.webhooks)."""
    api = APIRouter(route_class=MlflowRoute, tags=["MLflow webhooks"])

    def hooks(request: Request) -> MlflowWebhooks:
        webhooks: MlflowWebhooks = request.app.state.mlflow_webhooks
        return webhooks

    async def create(request: Request) -> JSONResponse:
        return JSONResponse(await hooks(request).create(await args_of(request)))

    async def list_all(request: Request) -> JSONResponse:
        return JSONResponse(await hooks(request).list(await args_of(request)))

    async def get(request: Request, webhook_id: str) -> JSONResponse:
        return JSONResponse(await hooks(request).get(webhook_id))

    async def update(request: Request, webhook_id: str) -> JSONResponse:
        return JSONResponse(await hooks(request).update(webhook_id, await args_of(request)))

    async def delete(request: Request, webhook_id: str) -> JSONResponse:
        return JSONResponse(await hooks(request).delete(webhook_id))

    async def test(request: Request, webhook_id: str) -> JSONResponse:
        return JSONResponse(await hooks(request).test(webhook_id, await args_of(request)))

    routes: list[tuple[str, str, Callable[..., Awaitable[JSONResponse]], str]] = [
        ("/webhooks", "POST", create, "Create a webhook (MLflow's create_webhook)"),
        ("/webhooks", "GET", list_all, "List webhooks (max_results, page_token)"),
        ("/webhooks/{webhook_id}", "GET", get, "Get a webhook"),
        (
            "/webhooks/{webhook_id}",
            "PATCH",
            update,
            "Update a webhook's name, description, url, events, secret or status",
        ),
        ("/webhooks/{webhook_id}", "DELETE", delete, "Delete a webhook"),
        ("/webhooks/{webhook_id}/test", "POST", test, "Send one test request now"),
    ]
    for path, method, endpoint, summary in routes:
        api.add_api_route(
            path,
            endpoint,
            methods=[method],
            summary=summary,
            operation_id=f"webhook_{endpoint.__name__}_{method.lower()}",
            response_class=JSONResponse,
        )
    return api


def artifacts_router() -> APIRouter:
    """A version's files, where get-download-uri points (modelreg.gateway.mlflow.artifacts)."""
    api = APIRouter(route_class=MlflowRoute, tags=["MLflow artifacts (a version's files)"])

    async def list_files(request: Request) -> JSONResponse:
        return JSONResponse(
            await artifacts.list_artifacts(registry_of(request), request.query_params.get("path", ""))
        )

    async def get_file(request: Request, path: str) -> Response:
        return await artifacts.download(registry_of(request), path)

    api.add_api_route(
        "/mlflow-artifacts/artifacts",
        list_files,
        methods=["GET"],
        summary="List a version's files under ?path=modelreg/<model>/<version>[/dir]",
    )
    api.add_api_route(
        "/mlflow-artifacts/artifacts/{path:path}",
        get_file,
        methods=["GET"],
        summary="Download one file of a version, verified against its sha256",
    )
    return api


def install(app: FastAPI) -> None:
    """Mounts the API on both of MLflow's prefixes (the ajax one is left out of /docs)."""
    app.state.mlflow = MlflowRegistry(app.state.backend)
    try:
        app.state.authenticator = Authenticator.from_env()
    except ValueError:
        app.state.authenticator = None
    app.state.mlflow_webhooks = MlflowWebhooks(app.state.backend)
    for api in (router(), webhooks_router()):
        app.include_router(api, prefix=PREFIXES[0])
        app.include_router(api, prefix=PREFIXES[1], include_in_schema=False)
    app.include_router(artifacts_router())

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
from modelreg.gateway.mlflow.errors import MlflowError, from_registry, invalid, mlflow_error_response
from modelreg.gateway.mlflow.service import MlflowRegistry
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


def router() -> APIRouter:
    api = APIRouter(route_class=MlflowRoute, tags=["MLflow registry REST API 2.0"])

    def endpoint(path: str, methods: list[str], operation: str, summary: str) -> Callable[..., Any]:
        def register(
            call: Callable[[MlflowRegistry, dict[str, Any], Request], Awaitable[dict[str, Any]]],
        ) -> Any:
            async def handle(request: Request) -> JSONResponse:
                return JSONResponse(await call(registry_of(request), await args_of(request), request))

            handle.__name__ = f"{operation}_{methods[0].lower()}"
            api.add_api_route(
                path,
                handle,
                methods=methods,
                summary=summary,
                operation_id=f"{operation}_{methods[0].lower()}",
                response_class=JSONResponse,
            )
            return call

        return register

    @endpoint("/registered-models/create", ["POST"], "create_registered_model", "Create a registered model")
    async def _create_model(r: MlflowRegistry, a: dict[str, Any], _: Request) -> dict[str, Any]:
        return await r.create_registered_model(a)

    @endpoint("/registered-models/get", ["GET"], "get_registered_model", "Get a registered model")
    async def _get_model(r: MlflowRegistry, a: dict[str, Any], _: Request) -> dict[str, Any]:
        return await r.get_registered_model(a)

    return api


def install(app: FastAPI) -> None:
    """Mounts the API on both of MLflow's prefixes (the ajax one is left out of /docs)."""
    app.state.mlflow = MlflowRegistry(app.state.backend)
    try:
        app.state.authenticator = Authenticator.from_env()
    except ValueError:
        app.state.authenticator = None
    api = router()
    app.include_router(api, prefix=PREFIXES[0])
    app.include_router(api, prefix=PREFIXES[1], include_in_schema=False)

"""The web UI's routes: server-rendered pages over the SDK, with no script and nothing
fetched from the network (the styles are served by this process).

Every page is rendered as the signed-in caller (the registry token sealed in the session
cookie) or, signed out, as an anonymous caller, so the services' RBAC decides what each
person may read and do; a refusal is shown in the service's own words.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from modelreg.client.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RegistryError,
    Unauthenticated,
)
from modelreg.errors import Unauthenticated as AuthRefused
from modelreg.gateway.ui import pages
from modelreg.gateway.ui.sessions import CONSISTENCY_COOKIE, SESSION_COOKIE, Session, SessionSealer
from modelreg.grpcutil.auth import Authenticator

HERE = Path(__file__).parent
SIGNIN_CSRF_COOKIE = "modelreg_signin_csrf"
log = structlog.get_logger("modelreg.gateway.ui")

SECURITY_HEADERS = {
    # No script at all, nothing from elsewhere, never framed.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class UiBackend(pages.Services, Protocol):
    def caller(
        self, bearer: str | None, consistency_token: str | None = None
    ) -> AbstractContextManager[None]: ...

    def consistency_token(self) -> str: ...


class Authenticate(Protocol):
    def __call__(self, authorization: str | None) -> str: ...


class Ui:
    def __init__(self, backend: UiBackend, authenticate: Authenticate, sealer: SessionSealer) -> None:
        self.backend = backend
        self.authenticate = authenticate
        self.sealer = sealer
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            enable_async=False,
        )
        self.templates.filters["quote"] = lambda text: quote(str(text), safe="")

    def session(self, request: Request) -> Session | None:
        return self.sealer.open(request.cookies.get(SESSION_COOKIE))

    def caller(self, request: Request) -> AbstractContextManager[None]:
        session = self.session(request)
        return self.backend.caller(
            session.bearer_token if session else None, request.cookies.get(CONSISTENCY_COOKIE) or None
        )

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        session = self.session(request)
        body = self.templates.get_template(template).render(
            session=session, path=request.url.path, now=pages.now_text(), **values
        )
        response = HTMLResponse(body, status_code=status)
        response.headers.update(SECURITY_HEADERS)
        if "elapsed" in values:
            response.headers["Server-Timing"] = f"app;dur={values['elapsed'] * 1000:.2f}"
        return response

    def error(self, request: Request, error: RegistryError) -> HTMLResponse:
        status = {NotFound: 404, PermissionDenied: 403, Unauthenticated: 401, InvalidArgument: 400}.get(
            type(error), 502
        )
        return self.render(
            request, "error.html", status=status, message=str(error), kind=type(error).__name__
        )

    def same_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        if not origin or origin == "null":
            return origin is None
        expected = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
        return origin == expected

    def remember_writes(self, response: Response, request: Request) -> None:
        """A later page, possibly served by another replica, reads this write."""
        response.set_cookie(
            CONSISTENCY_COOKIE,
            self.backend.consistency_token(),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=3600,
        )


def install(
    app: FastAPI, *, authenticate: Authenticate | None = None, sealer: SessionSealer | None = None
) -> None:
    """Mounts the UI at `/` and its styles at `/static`, over the app's backend
    (`app.state.backend`); sign-in checks tokens as the services do (Authenticator.from_env)."""
    if authenticate is None:
        authenticate = Authenticator.from_env().authenticate
    app.include_router(ui_router(app.state.backend, authenticate, sealer or SessionSealer.from_env()))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="ui-static")


def ui_router(backend: UiBackend, authenticate: Authenticate, sealer: SessionSealer) -> APIRouter:
    ui = Ui(backend, authenticate, sealer)
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    async def models(request: Request, ns: str = "", filter: str = "", page_token: str = "") -> Response:
        started = time.perf_counter()
        try:
            with ui.caller(request):
                page = await pages.models_page(ui.backend, ns, filter, page_token)
        except RegistryError as error:
            return ui.error(request, error)
        return ui.render(request, "models.html", page=page, elapsed=time.perf_counter() - started)

    @router.get("/signin", response_class=HTMLResponse)
    async def signin_form(request: Request, next: str = "/") -> Response:
        return _signin_page(ui, request, next, "")

    @router.post("/signin")
    async def signin(request: Request) -> Response:
        form = await request.form()
        next_url = _local(str(form.get("next", "/")))
        token = str(form.get("token", "")).strip()
        expected = request.cookies.get(SIGNIN_CSRF_COOKIE, "")
        if (
            not ui.same_origin(request)
            or not expected
            or not hmac.compare_digest(expected, str(form.get("csrf", "")))
        ):
            return _signin_page(ui, request, next_url, "The form expired; please sign in again.", 403)
        if not token:
            return _signin_page(ui, request, next_url, "Enter a registry token.", 400)
        try:
            principal = ui.authenticate(f"Bearer {token}")
        except AuthRefused as refused:
            log.info("ui_signin_refused", reason=str(refused))
            return _signin_page(ui, request, next_url, f"Sign-in refused: {refused}", 401)
        sealed, _ = ui.sealer.seal(principal, token)
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            sealed,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=8 * 3600,
            path="/",
        )
        response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/signin")
        log.info("ui_signed_in", principal=principal)
        return response

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        form = await request.form()
        session = ui.session(request)
        if (
            session is None
            or not ui.same_origin(request)
            or not hmac.compare_digest(session.csrf, str(form.get("csrf", "")))
        ):
            return ui.render(
                request, "error.html", status=403, message="Refused: the form expired.", kind="CSRF"
            )
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/models/{ns}/{model}", response_class=HTMLResponse)
    async def model(request: Request, ns: str, model: str) -> Response:
        return await _model_view(ui, request, f"{ns}/{model}")

    @router.post("/models/{ns}/{model}/requests/{request_id}/{decision}")
    async def decide(request: Request, ns: str, model: str, request_id: str, decision: str) -> Response:
        uri = f"{ns}/{model}"
        form = await request.form()
        session = ui.session(request)
        if decision not in ("approve", "reject"):
            return ui.render(request, "error.html", status=404, message="No such action.", kind="NotFound")
        if session is None:
            return RedirectResponse(f"/signin?next={quote(f'/models/{uri}')}", status_code=303)
        if not ui.same_origin(request) or not hmac.compare_digest(session.csrf, str(form.get("csrf", ""))):
            return ui.render(
                request, "error.html", status=403, message="Refused: the form expired.", kind="CSRF"
            )
        name = f"namespaces/{ns}/models/{model}/transitionRequests/{request_id}"
        comment = str(form.get("comment", ""))[:1000]
        try:
            with ui.caller(request):
                if decision == "approve":
                    await ui.backend.promotion.approve(name, comment=comment)
                else:
                    await ui.backend.promotion.reject(name, comment=comment)
        except (PermissionDenied, FailedPrecondition, InvalidArgument, Unauthenticated) as refused:
            # Shown where the button was: separation of duties, a stale request, a missing role.
            status = 403 if isinstance(refused, PermissionDenied | Unauthenticated) else 409
            return await _model_view(
                ui, request, uri, refusal=f"{decision.capitalize()} refused: {refused}", status=status
            )
        except RegistryError as error:
            return ui.error(request, error)
        response = RedirectResponse(f"/models/{uri}?done={decision}d#timeline", status_code=303)
        ui.remember_writes(response, request)
        return response

    @router.get("/models/{ns}/{model}/versions/{number}", response_class=HTMLResponse)
    async def version(
        request: Request, ns: str, model: str, number: int, diff: int | None = None
    ) -> Response:
        started = time.perf_counter()
        try:
            with ui.caller(request):
                page = await pages.version_page(ui.backend, f"{ns}/{model}", number, diff)
        except RegistryError as error:
            return ui.error(request, error)
        return ui.render(request, "version.html", page=page, elapsed=time.perf_counter() - started)

    @router.get("/models/{ns}/{model}/versions/{number}/files/{path:path}")
    async def download(request: Request, ns: str, model: str, number: int, path: str) -> Response:
        try:
            with ui.caller(request):
                version = await ui.backend.versioning.get_version(f"{ns}/{model}/{number}")
                file = next((f for f in version.files if f.path == path), None)
                if file is None:
                    raise NotFound(f"{version.name} has no file {path!r}")
                chunks = ui.backend.versioning.read_artifact(version.name, file)
                first = await anext(chunks, b"")
        except RegistryError as error:
            return ui.error(request, error)

        async def body() -> AsyncIterator[bytes]:
            yield first
            async for chunk in chunks:
                yield chunk

        filename = Path(path).name.replace('"', "")
        return StreamingResponse(
            body(),
            media_type=file.media_type or "application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Content-Length": str(file.size),
                "X-Content-SHA256": file.sha256,
                "X-Content-Type-Options": "nosniff",
            },
        )

    @router.get("/models/{ns}/{model}/audit", response_class=HTMLResponse)
    async def audit(request: Request, ns: str, model: str) -> Response:
        try:
            with ui.caller(request):
                rows = await pages.audit_page(ui.backend, f"{ns}/{model}")
        except RegistryError as error:
            return ui.error(request, error)
        return ui.render(request, "audit.html", uri=f"{ns}/{model}", rows=rows)

    return router


async def _model_view(
    ui: Ui, request: Request, uri: str, *, refusal: str = "", status: int = 200
) -> Response:
    started = time.perf_counter()
    try:
        with ui.caller(request):
            page = await pages.model_page(ui.backend, uri)
    except RegistryError as error:
        return ui.error(request, error)
    return ui.render(
        request,
        "model.html",
        status=status,
        page=page,
        refusal=refusal,
        done=request.query_params.get("done", ""),
        elapsed=time.perf_counter() - started,
    )


def _signin_page(ui: Ui, request: Request, next_url: str, message: str, status: int = 200) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = ui.render(
        request, "signin.html", status=status, next=_local(next_url), message=message, csrf=csrf
    )
    response.set_cookie(
        SIGNIN_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=1800,
        path="/signin",
    )
    return response


def _local(url: str) -> str:
    """Only a path on this site: a sign-in never redirects elsewhere."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return "/"
    return url

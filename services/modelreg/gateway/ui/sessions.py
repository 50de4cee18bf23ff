"""Sign-in sessions for the web UI, kept by the browser so the gateway stays stateless.

The session cookie holds the caller's registry token sealed with AES-GCM under the
gateway's session key (`MODELREG_UI_SESSION_KEY` or `MODELREG_UI_SESSION_KEY_FILE`; every
replica needs the same one), so it can be neither read nor forged; it is HttpOnly,
SameSite=Strict and Secure behind HTTPS. Buttons that write carry a CSRF token that must
equal the one sealed in the session (a synchroniser token), and a cross-origin POST is
refused by its Origin header as well.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SESSION_COOKIE = "modelreg_session"
CONSISTENCY_COOKIE = "modelreg_consistency"
SESSION_TTL_S = 8 * 3600
_AAD = b"modelreg-ui-session-v1"

log = structlog.get_logger("modelreg.gateway.ui")


@dataclass(frozen=True, slots=True)
class Session:
    principal: str
    bearer_token: str
    csrf: str
    expires_at: float

    @property
    def signed_in(self) -> bool:
        return bool(self.bearer_token)


class SessionSealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(hashlib.sha256(key).digest())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SessionSealer:
        if environ.get("MODELREG_UI_SESSION_KEY_FILE"):
            return cls(Path(environ["MODELREG_UI_SESSION_KEY_FILE"]).read_bytes().strip())
        if environ.get("MODELREG_UI_SESSION_KEY"):
            return cls(environ["MODELREG_UI_SESSION_KEY"].encode())
        log.warning(
            "ui_session_key_generated",
            hint="set MODELREG_UI_SESSION_KEY(_FILE): sessions end when this process stops and "
            "are not shared between replicas",
        )
        return cls(secrets.token_bytes(32))

    def seal(self, principal: str, bearer_token: str, *, ttl_s: float = SESSION_TTL_S) -> tuple[str, Session]:
        session = Session(principal, bearer_token, secrets.token_urlsafe(24), time.time() + ttl_s)
        body = json.dumps(
            {"p": session.principal, "t": session.bearer_token, "c": session.csrf, "e": session.expires_at}
        ).encode()
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, body, _AAD)
        return base64.urlsafe_b64encode(sealed).decode().rstrip("="), session

    def open(self, cookie: str | None) -> Session | None:
        """The session in `cookie`, or None when it is absent, forged, tampered with or expired."""
        if not cookie or len(cookie) > 8192:
            return None
        try:
            raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            body = json.loads(self._aead.decrypt(raw[:12], raw[12:], _AAD))
            session = Session(str(body["p"]), str(body["t"]), str(body["c"]), float(body["e"]))
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None
        return session if session.expires_at > time.time() else None

"""Who is calling: bearer tokens (API tokens, JWTs) or a client certificate, as an Identity.

Sources, any combination (see the README's "Authentication"):
- `MODELREG_AUTH_TOKEN_FILE`: API tokens `mr_<id>_<secret>` as salted scrypt hashes
  (`modelreg tokens create|list|revoke`), with principal, groups and expiry;
- `MODELREG_AUTH_JWT_SECRET_FILE` (HS256) and/or `MODELREG_AUTH_JWKS_FILE` (RS256/ES256),
  with `MODELREG_AUTH_JWT_ISSUER` and `MODELREG_AUTH_JWT_AUDIENCE`;
- mTLS (`runtime/tls.py`): the client certificate's subject CN names the caller when the
  call carries no bearer token;
- `MODELREG_AUTH_TOKENS="token=principal,..."`: plain tokens in the environment (kept for
  `make dev` and simple setups; prefer the token file).

`MODELREG_AUTH=required` refuses every call that names no one (UNAUTHENTICATED, with the
reason). `MODELREG_AUTH=none` (a laptop) lets calls without a credential through as
`anonymous`, while a credential that is sent must still be valid; it is logged loudly and
shows as NOT_SERVING in the `modelreg.auth` health entry. Unset, the mode is `required` when
any source is configured and `none` otherwise (`MODELREG_AUTH_ALLOW_ANONYMOUS=1` also means
`none`). The deploy manifests set `required`.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from modelreg.errors import Unauthenticated
from modelreg.grpcutil.jwtauth import JwtSettings, JwtVerifier, looks_like_jwt
from modelreg.grpcutil.tokenfile import TokenFile, looks_like_api_token

ANONYMOUS = "anonymous"
AUTH_HEALTH_SERVICE = "modelreg.auth"
"""Health entry: SERVING when authentication is required, NOT_SERVING when it is off."""


class AuthMode(Enum):
    NONE = "none"
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class Identity:
    principal: str
    groups: frozenset[str] = frozenset()
    method: str = "anonymous"
    """How the caller was authenticated: api-token, jwt, static-token, mtls or anonymous."""


ANONYMOUS_IDENTITY = Identity(ANONYMOUS)


class Authenticator:
    def __init__(
        self,
        tokens: Mapping[str, str] | None = None,
        *,
        mode: AuthMode | None = None,
        allow_anonymous: bool = False,
        token_file: TokenFile | None = None,
        jwt: JwtVerifier | None = None,
        trust_client_certificates: bool = False,
    ) -> None:
        self._tokens = dict(tokens or {})
        self._token_file = token_file
        self._jwt = jwt
        self._mtls = trust_client_certificates
        configured = bool(self._tokens) or token_file is not None or jwt is not None or self._mtls
        if mode is None:
            mode = AuthMode.NONE if allow_anonymous or not configured else AuthMode.REQUIRED
        if mode is AuthMode.REQUIRED and not configured:
            raise ValueError(
                "MODELREG_AUTH=required needs a credential source: MODELREG_AUTH_TOKEN_FILE, "
                "MODELREG_AUTH_JWT_SECRET_FILE / MODELREG_AUTH_JWKS_FILE, MODELREG_TLS_CLIENT_CA "
                "or MODELREG_AUTH_TOKENS"
            )
        self.mode = mode
        self._configured = configured

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Authenticator:
        spec = environ.get("MODELREG_AUTH_TOKENS", "")
        tokens = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            token, _, principal = item.partition("=")
            if not token or not principal:
                raise ValueError("MODELREG_AUTH_TOKENS entries must look like token=principal")
            tokens[token] = principal
        raw_mode = environ.get("MODELREG_AUTH", "").strip().lower()
        if raw_mode and raw_mode not in {m.value for m in AuthMode}:
            raise ValueError(f"MODELREG_AUTH must be none or required, not {raw_mode!r}")
        token_file = environ.get("MODELREG_AUTH_TOKEN_FILE")
        jwt_settings = JwtSettings.from_env(environ)
        return cls(
            tokens,
            mode=AuthMode(raw_mode) if raw_mode else None,
            allow_anonymous=environ.get("MODELREG_AUTH_ALLOW_ANONYMOUS") == "1",
            token_file=TokenFile(Path(token_file)) if token_file else None,
            jwt=JwtVerifier(jwt_settings) if jwt_settings else None,
            trust_client_certificates=bool(environ.get("MODELREG_TLS_CLIENT_CA")),
        )

    @property
    def open(self) -> bool:
        """Calls without a credential pass as `anonymous` (MODELREG_AUTH=none)."""
        return self.mode is AuthMode.NONE

    def describe(self) -> dict[str, object]:
        """For the startup log: the mode and the sources, never a credential."""
        return {
            "mode": self.mode.value,
            "api_tokens": None if self._token_file is None else str(self._token_file.path),
            "jwt": None
            if self._jwt is None
            else {"issuer": self._jwt.settings.issuer, "audience": self._jwt.settings.audience},
            "mtls_client_certificates": self._mtls,
            "static_tokens": len(self._tokens),
        }

    def identify(
        self,
        authorization: str | None,
        client_cn: str | None = None,
        *,
        before_hash: Callable[[], None] | None = None,
    ) -> Identity:
        """The caller's identity from the `authorization` metadata, else the verified client
        certificate's CN; Unauthenticated (with the reason) when that names no one validly.
        `before_hash` runs before an API token's scrypt check (see TokenFile.verify)."""
        if authorization:
            if not self._configured:
                return ANONYMOUS_IDENTITY  # nothing to check a token against (a laptop)
            scheme, _, presented = authorization.strip().partition(" ")
            presented = presented.strip()
            if scheme.lower() != "bearer" or not presented:
                raise Unauthenticated("malformed authorization metadata: expected 'Bearer <token>'")
            return self._bearer(presented, before_hash)
        if client_cn and self._mtls:
            return Identity(client_cn, method="mtls")
        if self.open:
            return ANONYMOUS_IDENTITY
        raise Unauthenticated("missing credentials: send 'authorization: Bearer <token>' metadata")

    def authenticate(self, authorization: str | None) -> str:
        """The principal alone (see identify)."""
        return self.identify(authorization).principal

    def _bearer(self, presented: str, before_hash: Callable[[], None] | None) -> Identity:
        if looks_like_api_token(presented) and self._token_file is not None:
            entry = self._token_file.verify(presented, before_hash=before_hash)
            return Identity(entry.principal, frozenset(entry.groups), "api-token")
        if looks_like_jwt(presented) and self._jwt is not None:
            principal, groups = self._jwt.verify(presented)
            return Identity(principal, groups, "jwt")
        for token, principal in self._tokens.items():
            if hmac.compare_digest(token.encode(), presented.encode()):
                return Identity(principal, method="static-token")
        if looks_like_api_token(presented):
            raise Unauthenticated("API tokens are not accepted here (no token file is configured)")
        if looks_like_jwt(presented):
            raise Unauthenticated("JWTs are not accepted here (no JWT key is configured)")
        raise Unauthenticated("the bearer token is not valid")


BearerTokenAuthenticator = Authenticator
"""The earlier name, kept for callers."""

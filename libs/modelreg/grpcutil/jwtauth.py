"""Bearer JWTs (PyJWT): HS256 with a shared secret from a file, RS256/ES256 with a JWKS file.

Every token must carry `exp`, `iss`, `aud` and the principal claim (`sub` unless
configured); `iss` and `aud` must equal the configured issuer and audience; `exp`, `nbf`
(and `iat`) are checked with a small leeway. The principal comes from the principal claim,
the groups from the group claim (`groups` by default: a list of strings, or one string).
The JWKS file is re-read when it changes (key rotation: publish the new key, then sign with
it, then drop the old one). Each refusal says why, never echoing the token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelreg.errors import Unauthenticated

if TYPE_CHECKING:
    import jwt

HMAC_ALGORITHMS = ("HS256",)
KEY_ALGORITHMS = ("RS256", "ES256")
DEFAULT_LEEWAY_S = 30.0


@dataclass(frozen=True, slots=True)
class JwtSettings:
    issuer: str
    audience: str
    secret_file: Path | None = None
    jwks_file: Path | None = None
    principal_claim: str = "sub"
    groups_claim: str = "groups"
    leeway_s: float = DEFAULT_LEEWAY_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> JwtSettings | None:
        secret = environ.get("MODELREG_AUTH_JWT_SECRET_FILE")
        jwks = environ.get("MODELREG_AUTH_JWKS_FILE")
        if not secret and not jwks:
            return None
        issuer = environ.get("MODELREG_AUTH_JWT_ISSUER", "")
        audience = environ.get("MODELREG_AUTH_JWT_AUDIENCE", "")
        if not issuer or not audience:
            raise ValueError(
                "JWT authentication needs MODELREG_AUTH_JWT_ISSUER and MODELREG_AUTH_JWT_AUDIENCE"
            )
        return cls(
            issuer=issuer,
            audience=audience,
            secret_file=Path(secret) if secret else None,
            jwks_file=Path(jwks) if jwks else None,
            principal_claim=environ.get("MODELREG_AUTH_JWT_PRINCIPAL_CLAIM", "sub"),
            groups_claim=environ.get("MODELREG_AUTH_JWT_GROUPS_CLAIM", "groups"),
            leeway_s=float(environ.get("MODELREG_AUTH_JWT_LEEWAY_S", str(DEFAULT_LEEWAY_S))),
        )


def looks_like_jwt(presented: str) -> bool:
    return presented.count(".") == 2 and presented.startswith("eyJ")


class _Jwks:
    """A JWKS file, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self.current()

    def current(self) -> dict[str | None, jwt.PyJWK]:
        import jwt

        stat = os.stat(self.path)
        stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if stamp != self._stamp:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            keys: dict[str | None, jwt.PyJWK] = {}
            for raw in document.get("keys", []):
                if raw.get("use", "sig") != "sig":
                    continue
                key = jwt.PyJWK(raw)
                if key.algorithm_name not in KEY_ALGORITHMS:
                    raise ValueError(f"{self.path}: key {raw.get('kid')!r} uses {key.algorithm_name}")
                keys[raw.get("kid")] = key
            if not keys:
                raise ValueError(f"{self.path} holds no RS256/ES256 signing key")
            self._keys, self._stamp = keys, stamp
        return self._keys


class JwtVerifier:
    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._secret = settings.secret_file.read_bytes().strip() if settings.secret_file else None
        if self._secret is not None and len(self._secret) < 32:
            raise ValueError("the HS256 secret needs at least 32 bytes")
        self._jwks = _Jwks(settings.jwks_file) if settings.jwks_file else None

    def verify(self, presented: str) -> tuple[str, frozenset[str]]:
        """(principal, groups) of a valid token; Unauthenticated with the reason otherwise."""
        # Imported on first use: PyJWT loads cryptography, which every CLI start would pay for.
        import jwt

        try:
            header = jwt.get_unverified_header(presented)
        except jwt.DecodeError:
            raise Unauthenticated("malformed JWT: the header does not decode") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm in HMAC_ALGORITHMS and self._secret is not None:
            key = self._secret
        elif algorithm in KEY_ALGORITHMS and self._jwks is not None:
            keys = self._jwks.current()
            kid = header.get("kid")
            if kid is None and len(keys) == 1:
                kid = next(iter(keys))
            if kid not in keys:
                raise Unauthenticated(f"JWT signed with an unknown key (kid {kid!r})")
            key = keys[kid]
            if key.algorithm_name != algorithm:
                raise Unauthenticated(f"JWT algorithm {algorithm} does not match key {kid!r}")
        else:
            raise Unauthenticated(f"JWT algorithm {algorithm!r} is not accepted here")
        settings = self.settings
        try:
            claims = jwt.decode(
                presented,
                key,
                algorithms=[algorithm],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_s,
                options={"require": ["exp", "iss", "aud", settings.principal_claim]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("JWT expired (exp is in the past)") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("JWT not valid yet (nbf or iat is in the future)") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"JWT has the wrong audience (expected {settings.audience!r})") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"JWT has the wrong issuer (expected {settings.issuer!r})") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("JWT signature does not verify (tampered, or another key)") from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"JWT lacks the required {error.claim!r} claim") from None
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"malformed JWT ({type(error).__name__})") from None
        principal = claims.get(settings.principal_claim)
        if not isinstance(principal, str) or not principal:
            raise Unauthenticated(f"JWT claim {settings.principal_claim!r} is not a non-empty string")
        raw_groups = claims.get(settings.groups_claim, [])
        if isinstance(raw_groups, str):
            raw_groups = [raw_groups]
        if not isinstance(raw_groups, list) or not all(isinstance(g, str) for g in raw_groups):
            raise Unauthenticated(f"JWT claim {settings.groups_claim!r} is not a list of strings")
        return principal, frozenset(raw_groups)

"""Who is calling: bearer tokens mapped to principals.

`MODELREG_AUTH_TOKENS="s3cret=alice,0ther=bob"` configures the tokens. With no
tokens configured the service runs open, as principal `anonymous`, which suits
a laptop; the startup log says so loudly. `MODELREG_AUTH_ALLOW_ANONYMOUS=1`
keeps calls without a token open (as `anonymous`) while known tokens still
name their principal: `modelreg dev` runs so, with a demo requester and approver.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from modelreg.errors import Unauthenticated

ANONYMOUS = "anonymous"


class BearerTokenAuthenticator:
    def __init__(self, tokens: Mapping[str, str], *, allow_anonymous: bool = False) -> None:
        self._tokens = dict(tokens)
        self._allow_anonymous = allow_anonymous or not tokens

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> BearerTokenAuthenticator:
        spec = environ.get("MODELREG_AUTH_TOKENS", "")
        tokens = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            token, _, principal = item.partition("=")
            if not token or not principal:
                raise ValueError("MODELREG_AUTH_TOKENS entries must look like token=principal")
            tokens[token] = principal
        return cls(tokens, allow_anonymous=environ.get("MODELREG_AUTH_ALLOW_ANONYMOUS") == "1")

    @property
    def open(self) -> bool:
        return self._allow_anonymous

    def authenticate(self, authorization: str | None) -> str:
        if not self._tokens or (not authorization and self._allow_anonymous):
            return ANONYMOUS
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthenticated("missing bearer token in the authorization metadata")
        presented = authorization[7:].strip()
        for token, principal in self._tokens.items():
            if hmac.compare_digest(token, presented):
                return principal
        raise Unauthenticated("the bearer token is not valid")

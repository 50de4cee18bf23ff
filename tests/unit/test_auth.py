from __future__ import annotations

import pytest

from modelreg.errors import Unauthenticated
from modelreg.grpcutil.auth import ANONYMOUS, BearerTokenAuthenticator


def test_tokens_name_their_principal_and_anything_else_is_refused() -> None:
    auth = BearerTokenAuthenticator.from_env({"MODELREG_AUTH_TOKENS": "t-alice=alice, t-bob=bob"})
    assert auth.authenticate("Bearer t-alice") == "alice"
    assert auth.authenticate("bearer t-bob") == "bob"
    for header in (None, "", "Bearer nope", "Basic t-alice", "t-alice"):
        with pytest.raises(Unauthenticated):
            auth.authenticate(header)


def test_open_mode_is_anonymous() -> None:
    auth = BearerTokenAuthenticator.from_env({})
    assert auth.open
    assert auth.authenticate(None) == ANONYMOUS
    assert auth.authenticate("Bearer whatever") == ANONYMOUS


def test_anonymous_allowed_beside_known_tokens() -> None:
    auth = BearerTokenAuthenticator.from_env(
        {"MODELREG_AUTH_TOKENS": "t-alice=alice", "MODELREG_AUTH_ALLOW_ANONYMOUS": "1"}
    )
    assert auth.authenticate(None) == ANONYMOUS
    assert auth.authenticate("Bearer t-alice") == "alice"
    with pytest.raises(Unauthenticated):
        auth.authenticate("Bearer forged")


def test_malformed_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="token=principal"):
        BearerTokenAuthenticator.from_env({"MODELREG_AUTH_TOKENS": "just-a-token"})

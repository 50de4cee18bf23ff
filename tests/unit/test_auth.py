from __future__ import annotations

import json
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from modelreg.errors import Unauthenticated
from modelreg.grpcutil.auth import ANONYMOUS, ANONYMOUS_IDENTITY, BearerTokenAuthenticator
from modelreg.grpcutil.jwtauth import JwtSettings, JwtVerifier
from modelreg.grpcutil.ratelimit import RateLimited
from modelreg.grpcutil.tokenfile import TokenFile, create_token, revoke_token


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


def test_mode_required_without_a_source_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="needs a credential source"):
        BearerTokenAuthenticator.from_env({"MODELREG_AUTH": "required"})
    with pytest.raises(ValueError, match="none or required"):
        BearerTokenAuthenticator.from_env({"MODELREG_AUTH": "off"})


def test_mode_none_still_checks_a_credential_that_is_sent() -> None:
    auth = BearerTokenAuthenticator.from_env(
        {"MODELREG_AUTH": "none", "MODELREG_AUTH_TOKENS": "t-alice=alice"}
    )
    assert auth.open
    assert auth.identify(None) == ANONYMOUS_IDENTITY
    assert auth.identify("Bearer t-alice").principal == "alice"
    with pytest.raises(Unauthenticated, match="not valid"):
        auth.identify("Bearer forged")


def test_jwt_needs_issuer_and_audience(tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_text("x" * 40)
    with pytest.raises(ValueError, match="ISSUER"):
        BearerTokenAuthenticator.from_env({"MODELREG_AUTH_JWT_SECRET_FILE": str(secret)})


def test_token_file_round_trip_revocation_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token, entry = create_token(path, "alice", groups=["ml", "ml"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in path.read_text() and token[16:] not in path.read_text()
    verifier = TokenFile(path)
    assert verifier.verify(token).groups == ("ml",)
    assert verifier.verify(token).principal == "alice"  # the cached path
    revoke_token(path, entry.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        verifier.verify(token)
    later = datetime.now(UTC) + timedelta(days=2)
    expiring, _ = create_token(path, "bob", expires_at=datetime.now(UTC) + timedelta(days=1))
    assert verifier.verify(expiring).principal == "bob"
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(expiring, now=later)


def test_concurrent_creates_keep_every_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda i: create_token(path, f"p{i}")[0], range(8)))
    verifier = TokenFile(path)
    assert len(verifier) == 8
    assert {verifier.verify(t).principal for t in made} == {f"p{i}" for i in range(8)}


def test_before_hash_runs_before_scrypt_but_not_for_a_cached_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token, _ = create_token(path, "alice")
    verifier = TokenFile(path)
    calls: list[str] = []

    def refuse() -> None:
        calls.append("checked")
        raise RateLimited("denials exhausted", 1.0)

    with pytest.raises(RateLimited):  # a guess never reaches scrypt once the bucket is empty
        verifier.verify(token[:-4] + "AAAA", before_hash=refuse)
    calls.clear()
    assert verifier.verify(token, before_hash=lambda: None).principal == "alice"
    assert verifier.verify(token, before_hash=refuse).principal == "alice"  # cached: no check
    assert calls == []


def _jwks(path: Path, key: ec.EllipticCurvePrivateKey, kid: str) -> None:
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    # Replaced by rename, as a mounted secret is: a new inode, whatever the clock's granularity.
    staged = path.with_suffix(".new")
    staged.write_text(json.dumps({"keys": [{**public, "kid": kid, "alg": "ES256"}]}))
    staged.replace(path)


def test_jwks_rotation_and_configured_claims(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    old, new = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    _jwks(jwks, old, "k1")
    verifier = JwtVerifier(
        JwtSettings("iss", "aud", jwks_file=jwks, principal_claim="email", groups_claim="roles")
    )
    claims = {"email": "eve@example.com", "roles": ["ml", "ops"], "iss": "iss", "aud": "aud", "exp": 2**31}
    signed_old = jwt.encode(claims, old, algorithm="ES256", headers={"kid": "k1"})
    assert verifier.verify(signed_old) == ("eve@example.com", frozenset({"ml", "ops"}))
    _jwks(jwks, new, "k2")  # rotated: the old key is gone from the file
    with pytest.raises(Unauthenticated, match="unknown key"):
        verifier.verify(signed_old)
    signed_new = jwt.encode(claims, new, algorithm="ES256", headers={"kid": "k2"})
    assert verifier.verify(signed_new)[0] == "eve@example.com"
    with pytest.raises(Unauthenticated, match="'email'"):
        verifier.verify(jwt.encode({**claims, "email": None}, new, algorithm="ES256", headers={"kid": "k2"}))

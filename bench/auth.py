"""What authenticating a call costs: Authenticator.identify per credential kind, and the
rate limiter's admit, in process (no servers; the figures add to every call's latency).

    python -m bench.auth [--calls 2000]

Prints µs per call (p50 and p99). The API token's first check runs scrypt (n=2**14, r=8,
p=1); later checks of the same token hit the per-process cache until the file changes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from rich.console import Console
from rich.table import Table

from modelreg.grpcutil.auth import Authenticator
from modelreg.grpcutil.jwtauth import JwtSettings, JwtVerifier
from modelreg.grpcutil.ratelimit import RateLimiter, RateLimitSettings
from modelreg.grpcutil.tokenfile import TokenFile, create_token

ISSUER, AUDIENCE = "https://issuer.bench", "modelreg-bench"


def _timed(action: Callable[[], object], calls: int) -> tuple[float, float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as raw:
        directory = Path(raw)
        token_file = directory / "tokens.json"
        api_token, _ = create_token(token_file, "alice", groups=["ml"])
        secret = b"s" * 48
        (directory / "secret").write_bytes(secret)
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ec_key = ec.generate_private_key(ec.SECP256R1())
        jwks = {
            "keys": [
                {
                    **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())),
                    "kid": "r",
                    "alg": "RS256",
                },
                {
                    **json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())),
                    "kid": "e",
                    "alg": "ES256",
                },
            ]
        }
        (directory / "jwks.json").write_text(json.dumps(jwks))
        settings = JwtSettings(ISSUER, AUDIENCE, directory / "secret", directory / "jwks.json")
        auth = Authenticator(
            {"static-bench-token": "bob"},
            token_file=TokenFile(token_file),
            jwt=JwtVerifier(settings),
            trust_client_certificates=True,
        )
        now = int(time.time())
        claims = {"sub": "carol", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 3600, "groups": ["ml"]}
        tokens = {
            "HS256 JWT": jwt.encode(claims, secret, algorithm="HS256"),
            "RS256 JWT": jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "r"}),
            "ES256 JWT": jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "e"}),
        }
        rows: list[tuple[str, float, float]] = []
        fresh = TokenFile(token_file)
        started = time.perf_counter()
        fresh.verify(api_token)
        first = (time.perf_counter() - started) * 1e6
        rows.append(("API token, first check (scrypt)", first, first))
        rows.append(("API token, cached", *_timed(lambda: auth.identify(f"Bearer {api_token}"), args.calls)))
        rows.append(("static token", *_timed(lambda: auth.identify("Bearer static-bench-token"), args.calls)))
        for name, token in tokens.items():
            rows.append((name, *_timed(lambda t=token: auth.identify(f"Bearer {t}"), args.calls)))  # type: ignore[misc]
        rows.append(("mTLS CN (no bearer)", *_timed(lambda: auth.identify(None, "erin"), args.calls)))
        limiter = RateLimiter(RateLimitSettings.from_env({}))
        method = "/modelreg.catalog.v1.CatalogService/GetRegisteredModel"
        rows.append(("rate limiter admit", *_timed(lambda: limiter.admit(method, "alice"), args.calls)))
    table = Table(title=f"authentication cost per call ({args.calls} calls each)")
    for column in ("credential", "p50 µs", "p99 µs"):
        table.add_column(column)
    for name, p50, p99 in rows:
        table.add_row(name, f"{p50:,.1f}", f"{p99:,.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()

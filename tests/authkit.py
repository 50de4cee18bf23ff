"""Real credentials for tests: token files, JWT keys (HS256, RS256, ES256) and a small CA.

Every secret made here is registered with the post-suite log scan (tests/logscan.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from modelreg.grpcutil.tokenfile import create_token
from tests.logscan import register_secret

ISSUER = "https://issuer.test.modelreg"
AUDIENCE = "modelreg-test"


def _register_pem(pem: bytes) -> None:
    """A PEM key's body lines are what would show if it leaked."""
    for line in pem.decode().splitlines():
        if not line.startswith("-----") and len(line) >= 32:
            register_secret(line)


def api_token(path: Path, principal: str, **kwargs: Any) -> tuple[str, str]:
    """(token, id) of a new token in the file at `path`."""
    token, entry = create_token(path, principal, **kwargs)
    register_secret(token)
    register_secret(token[len("mr_") + 13 :])  # the secret part
    return token, entry.id


@dataclass
class JwtKeys:
    """An HS256 secret file and a JWKS file with one RS256 and one ES256 key, plus a key the
    services do not know; `sign` issues tokens with the test issuer and audience."""

    secret_file: Path
    jwks_file: Path
    secret: bytes
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    stranger: rsa.RSAPrivateKey

    @classmethod
    def create(cls, directory: Path) -> JwtKeys:
        secret = secrets.token_urlsafe(48).encode()
        register_secret(secret.decode())
        secret_file = directory / "jwt-secret"
        secret_file.write_bytes(secret)
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ec_key = ec.generate_private_key(ec.SECP256R1())
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for key in (rsa_key, ec_key, stranger):
            _register_pem(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        jwks = {
            "keys": [
                {
                    **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())),
                    "kid": "rsa-1",
                    "alg": "RS256",
                    "use": "sig",
                },
                {
                    **json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())),
                    "kid": "ec-1",
                    "alg": "ES256",
                    "use": "sig",
                },
            ]
        }
        jwks_file = directory / "jwks.json"
        jwks_file.write_text(json.dumps(jwks))
        return cls(secret_file, jwks_file, secret, rsa_key, ec_key, stranger)

    def env(self) -> dict[str, str]:
        return {
            "MODELREG_AUTH_JWT_SECRET_FILE": str(self.secret_file),
            "MODELREG_AUTH_JWKS_FILE": str(self.jwks_file),
            "MODELREG_AUTH_JWT_ISSUER": ISSUER,
            "MODELREG_AUTH_JWT_AUDIENCE": AUDIENCE,
        }

    def sign(
        self, subject: str, *, alg: str = "HS256", kid: str | None = None, key: Any = None, **claims: Any
    ) -> str:
        now = int(time.time())
        payload = {"sub": subject, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 600}
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        if key is None:
            key = {"HS256": self.secret, "RS256": self.rsa_key, "ES256": self.ec_key}[alg]
        if kid is None and alg != "HS256":
            kid = {"RS256": "rsa-1", "ES256": "ec-1"}[alg]
        token = jwt.encode(payload, key, algorithm=alg, headers={"kid": kid} if kid else None)
        register_secret(token)
        return token


def tampered(token: str) -> str:
    """The token with its payload's subject changed and the signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return register_secret(f"{header}.{forged}.{signature}")


@dataclass
class Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and client certificates by CN."""

    directory: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate

    @classmethod
    def create(cls, directory: Path) -> Pki:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelreg test CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        pki = cls(directory, key, cert)
        pki.ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return pki

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def issue(self, common_name: str, *, server: bool = False) -> tuple[Path, Path]:
        """(cert file, key file) for `common_name`, signed by the CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.ca_key, hashes.SHA256())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _register_pem(pem)
        cert_file, key_file = self.directory / f"{common_name}.crt", self.directory / f"{common_name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(pem)
        return cert_file, key_file

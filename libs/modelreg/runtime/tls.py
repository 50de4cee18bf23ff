"""TLS for the gRPC port, and mTLS as an option.

Server (a service): `MODELREG_TLS_CERT` and `MODELREG_TLS_KEY` (PEM files) serve TLS;
`MODELREG_TLS_CLIENT_CA` also requires every client to present a certificate signed by
that CA, and a call without a bearer token is then made by the certificate's subject CN.

Client (the SDK and CLI): `MODELREG_TLS_CA` (the CA that signed the servers' certificates)
turns TLS on; `MODELREG_TLS_CLIENT_CERT` and `MODELREG_TLS_CLIENT_KEY` present a client
certificate; `MODELREG_TLS_SERVER_NAME` overrides the name checked against the server's
certificate (e.g. when connecting by IP address).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


@dataclass(frozen=True, slots=True)
class ServerTls:
    cert: bytes
    key: bytes
    client_ca: bytes | None = None

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ServerTls | None:
        cert, key = environ.get("MODELREG_TLS_CERT"), environ.get("MODELREG_TLS_KEY")
        client_ca = environ.get("MODELREG_TLS_CLIENT_CA")
        if not cert and not key:
            if client_ca:
                raise ValueError("MODELREG_TLS_CLIENT_CA needs MODELREG_TLS_CERT and MODELREG_TLS_KEY")
            return None
        if not cert or not key:
            raise ValueError("TLS needs both MODELREG_TLS_CERT and MODELREG_TLS_KEY")
        return cls(Path(cert).read_bytes(), Path(key).read_bytes(), _read(client_ca))

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


@dataclass(frozen=True, slots=True)
class ClientTls:
    ca: bytes
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ClientTls | None:
        ca = environ.get("MODELREG_TLS_CA")
        cert, key = environ.get("MODELREG_TLS_CLIENT_CERT"), environ.get("MODELREG_TLS_CLIENT_KEY")
        if not ca:
            if cert or key:
                raise ValueError("a client certificate needs MODELREG_TLS_CA too")
            return None
        if bool(cert) != bool(key):
            raise ValueError("a client certificate needs both MODELREG_TLS_CLIENT_CERT and _KEY")
        return cls(Path(ca).read_bytes(), _read(cert), _read(key), environ.get("MODELREG_TLS_SERVER_NAME"))

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )

    def options(self) -> list[tuple[str, Any]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def secure_channel(address: str, tls: ClientTls | None) -> grpc.aio.Channel:
    """An aio channel: TLS when configured, plaintext otherwise."""
    if tls is None:
        return grpc.aio.insecure_channel(address)
    return grpc.aio.secure_channel(address, tls.credentials(), options=tls.options())


def client_common_name(context: Any) -> str | None:
    """The verified client certificate's subject CN (gRPC checked it against the client CA)."""
    try:
        auth = context.auth_context()
    except (AttributeError, RuntimeError):
        return None
    names = auth.get("x509_common_name") if auth else None
    if not names:
        return None
    value = names[0]
    return value.decode() if isinstance(value, bytes) else str(value)

"""The gateway's configuration, all from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelreg.client.connection import Endpoints

DEFAULT_PORT = 5000
DEFAULT_NAMESPACE = "mlflow"


ADDRESS_VARIABLES = (
    "MODELREG_CATALOG_ADDR",
    "MODELREG_VERSIONING_ADDR",
    "MODELREG_LINEAGE_ADDR",
    "MODELREG_PROMOTION_ADDR",
    "MODELREG_AUDIT_ADDR",
    "MODELREG_EVENTS_ADDR",
)
"""Where the gateway finds the services (read by Endpoints.from_env, as the SDK does)."""


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    endpoints: Endpoints = field(default_factory=Endpoints)
    namespace: str = DEFAULT_NAMESPACE
    """The registry namespace MLflow's flat model names live in (MODELREG_GATEWAY_NAMESPACE)."""
    public_url: str = ""
    """The URL clients reach the gateway at, for download URIs (MODELREG_GATEWAY_PUBLIC_URL);
    empty: taken from each request's Host."""
    timeout_s: float = 30.0
    service_token: str | None = None
    """The bearer token sent for a request that carries no credential (MODELREG_GATEWAY_TOKEN);
    unset, such a request reaches the services anonymous."""

    source_roots: tuple[Path, ...] = ()
    """Local directories whose files a create-model-version `source` may name
    (MODELREG_GATEWAY_SOURCE_ROOTS, `:`-separated); empty: local sources are refused."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> GatewaySettings:
        return cls(
            endpoints=Endpoints.from_env(environ),
            namespace=environ.get("MODELREG_GATEWAY_NAMESPACE", DEFAULT_NAMESPACE),
            public_url=environ.get("MODELREG_GATEWAY_PUBLIC_URL", "").rstrip("/"),
            timeout_s=float(environ.get("MODELREG_GATEWAY_TIMEOUT_S", "30")),
            service_token=environ.get("MODELREG_GATEWAY_TOKEN") or None,
            source_roots=tuple(
                Path(p).resolve() for p in environ.get("MODELREG_GATEWAY_SOURCE_ROOTS", "").split(":") if p
            ),
        )

"""The modelreg Python SDK.

from modelreg.client import Registry
with Registry() as registry:
    registry.catalog.register_model("ns/churn", description="...")
    for item in registry.promotion.watch_promotions("namespaces/ns"):
        ...
"""

from modelreg.client.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    IntegrityError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RegistryError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from modelreg.client.registry import AsyncRegistry, Endpoints, Registry
from modelreg.client.uris import ModelUri, parse_uri

__all__ = [
    "Aborted",
    "AlreadyExists",
    "AsyncRegistry",
    "DeadlineExceeded",
    "Endpoints",
    "FailedPrecondition",
    "IntegrityError",
    "InvalidArgument",
    "ModelUri",
    "NotFound",
    "PermissionDenied",
    "Registry",
    "RegistryError",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "parse_uri",
]

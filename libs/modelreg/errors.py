"""Errors a use case may raise, free of any transport.

The single gRPC interceptor (modelreg.grpcutil.errors) turns each into its
status code; nothing else in the codebase maps errors.
"""

from __future__ import annotations

from dataclasses import dataclass


class ModelregError(Exception):
    """Base of every error a client is meant to see."""


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(ModelregError):
    def __init__(self, *violations: FieldViolation) -> None:
        self.violations = list(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))

    @classmethod
    def of(cls, field: str, description: str) -> InvalidArgument:
        return cls(FieldViolation(field, description))


class NotFound(ModelregError):
    pass


class AlreadyExists(ModelregError):
    pass


class FailedPrecondition(ModelregError):
    pass


class PermissionDenied(ModelregError):
    pass


class Unauthenticated(ModelregError):
    pass


class Aborted(ModelregError):
    """A concurrency conflict the client may retry (stale etag, lost race)."""


class DataLoss(ModelregError):
    """Stored bytes no longer match their digest: corruption at rest."""


class ConsistencyTimeout(ModelregError):
    """The service did not reach the client's consistency token in time."""

"""Exceptions of the SDK, one per gRPC status a caller can act on."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class RegistryError(Exception):
    """A call to the registry failed; `code` is the gRPC status."""

    code = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, field_violations: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field_violations = field_violations or []


class InvalidArgument(RegistryError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(RegistryError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(RegistryError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(RegistryError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(RegistryError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(RegistryError):
    code = grpc.StatusCode.UNAUTHENTICATED


class Aborted(RegistryError):
    """A concurrent change won; re-read and retry."""

    code = grpc.StatusCode.ABORTED


class Unavailable(RegistryError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(RegistryError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ResourceExhausted(RegistryError):
    """A rate limit refused the call; `retry_after_s` is the server's RetryInfo delay."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    retry_after_s: float | None = None


class IntegrityError(RegistryError):
    """Downloaded bytes do not match the manifest's sha256."""

    code = grpc.StatusCode.DATA_LOSS


# Every direct subclass above is the one exception of its status code.
_BY_CODE = {cls.code: cls for cls in RegistryError.__subclasses__()}


def from_rpc_error(error: grpc.aio.AioRpcError | grpc.RpcError) -> RegistryError:
    code = error.code()
    details = error.details() or code.name
    violations: list[tuple[str, str]] = []
    status = rpc_status.from_call(error)
    if status is not None:
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                violations += [(v.field, v.description) for v in bad_request.field_violations]
    result = _BY_CODE.get(code, RegistryError)(details, violations)
    if isinstance(result, ResourceExhausted):
        result.retry_after_s = retry_delay_of(error)
    return result


def retry_delay_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> float | None:
    """The google.rpc.RetryInfo delay in an error's status details, if it has one."""
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToTimedelta().total_seconds()
    return None

"""MLflow's error wire format: `{"error_code": ..., "message": ...}` with MLflow's HTTP status
for each code (mlflow/exceptions.py: ERROR_CODE_TO_HTTP_STATUS)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from modelreg.client import errors as sdk

HTTP_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "INVALID_STATE": 500,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "DATA_LOSS": 500,
    "INTERNAL_ERROR": 500,
}


class MlflowError(Exception):
    """An answer in MLflow's words: raised by a handler, rendered by `mlflow_error_response`."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.error_code]


def not_found(message: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", message)


def invalid(message: str) -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", message)


def already_exists(message: str) -> MlflowError:
    return MlflowError("RESOURCE_ALREADY_EXISTS", message)


_CODES: dict[type[sdk.RegistryError], str] = {
    sdk.InvalidArgument: "INVALID_PARAMETER_VALUE",
    sdk.NotFound: "RESOURCE_DOES_NOT_EXIST",
    sdk.AlreadyExists: "RESOURCE_ALREADY_EXISTS",
    sdk.FailedPrecondition: "INVALID_STATE",
    sdk.PermissionDenied: "PERMISSION_DENIED",
    sdk.Unauthenticated: "UNAUTHENTICATED",
    sdk.Aborted: "ABORTED",
    sdk.Unavailable: "TEMPORARILY_UNAVAILABLE",
    sdk.DeadlineExceeded: "DEADLINE_EXCEEDED",
    sdk.ResourceExhausted: "RESOURCE_EXHAUSTED",
    sdk.IntegrityError: "DATA_LOSS",
}


def from_registry(error: sdk.RegistryError) -> MlflowError:
    """A service's refusal, in MLflow's codes; FAILED_PRECONDITION is MLflow's INVALID_STATE but
    answered 400, as MLflow's own server does for a request that the state forbids."""
    code = _CODES.get(type(error), "INTERNAL_ERROR")
    if code == "INVALID_STATE":
        return MlflowError("INVALID_PARAMETER_VALUE", error.message)
    return MlflowError(code, error.message)


def mlflow_error_response(error: MlflowError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="modelreg", Bearer'} if error.status == 401 else None
    return JSONResponse(
        {"error_code": error.error_code, "message": error.message}, status_code=error.status, headers=headers
    )


async def handle_mlflow_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, MlflowError)
    return mlflow_error_response(error)


async def handle_registry_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, sdk.RegistryError)
    return mlflow_error_response(from_registry(error))

"""structlog JSON logs, bound per request to the correlation id, with secrets redacted.

Two rules keep credentials out of the logs:
- tracebacks never carry local variables (structlog's `dict_tracebacks` would dump the
  interceptor's metadata, `authorization: Bearer ...` included);
- `redact_secrets` runs after exceptions are formatted and before rendering, so a field
  named like a secret (authorization, token, secret, password, api/private/signing key)
  and anything in any text that looks like a bearer token, a modelreg API token or a JWT
  is replaced by `[REDACTED]` whatever logged it.

`MODELREG_LOG_FILE=PATH` also appends every rendered line to PATH (the test suite scans
those files for secrets after the run).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[REDACTED]"
LOG_FILE_ENV = "MODELREG_LOG_FILE"

_SECRET_KEY = re.compile(
    r"(authorization|bearer|passw(or)?d|secret|credential|private[_-]?key|signing[_-]?key|"
    r"api[_-]?key|access[_-]?key|session[_-]?key|^token$|_token$|^tokens$|cookie)",
    re.IGNORECASE,
)
"""Field names whose values are never logged (consistency tokens are not secrets, but a
`token` field is redacted anyway rather than guessed at)."""

_SECRET_TEXT = re.compile(
    r"(?i:bearer)\s+(?!tokens?\b)[^\s'\",}\]]+"  # an authorization header value
    r"|mr_[A-Za-z0-9]+_[A-Za-z0-9_-]{16,}"  # a modelreg API token
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # a JWT (header.payload.signature)
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)"
)
"""Text that is a credential wherever it appears (in a message, an error, a traceback)."""


def redact_text(text: str) -> str:
    return _SECRET_TEXT.sub(REDACTED, text)


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 20:
        return value
    if isinstance(value, str):
        return redact_text(value) if _could_hold_secret(value) else value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        # gRPC metadata is a sequence of (key, value) pairs.
        if len(value) == 2 and isinstance(value[0], str) and _SECRET_KEY.search(value[0]):
            return [value[0], REDACTED]
        return [_redact(item, depth + 1) for item in value]
    if isinstance(value, BaseException):
        return redact_text(repr(value))
    return value


def _could_hold_secret(text: str) -> bool:
    # A cheap pre-check so the regex runs only on text that might match.
    return "earer" in text or "mr_" in text or "eyJ" in text or "PRIVATE KEY" in text


def redact_secrets(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """A structlog processor: secret-named fields and secret-looking text become [REDACTED]."""
    redacted = _redact(event_dict)
    assert isinstance(redacted, Mapping)
    return redacted


class _Tee:
    """Writes each rendered line to the console stream and to the log file."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (lives as long as the process)

    def write(self, text: str) -> int:
        # sys.stderr is looked up on each write: a test runner swaps it to capture output.
        sys.stderr.write(text)
        self._file.write(text)
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()
        self._file.flush()


def configure_logging(
    service: str,
    *,
    json: bool | None = None,
    level: str | None = None,
    cache: bool = True,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """`cache=False` keeps loggers reconfigurable (the test suite's `capture_logs` needs it)."""
    level_name = (level or environ.get("MODELREG_LOG_LEVEL", "INFO")).upper()
    as_json = json if json is not None else environ.get("MODELREG_LOG_FORMAT", "json") == "json"
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        # The exception is already plain text (format_exc_info) and redacted by then.
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    exceptions: structlog.typing.Processor = (
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        if as_json
        else structlog.processors.format_exc_info
    )
    stream: TextIO = sys.stderr
    if path := environ.get(LOG_FILE_ENV):
        stream = _Tee(path)  # type: ignore[assignment]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            exceptions,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=cache,
    )
    structlog.contextvars.bind_contextvars(service=service)

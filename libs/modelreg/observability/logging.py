"""structlog JSON logs, bound per request to the correlation id."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure_logging(service: str, *, json: bool | None = None, level: str | None = None) -> None:
    level_name = (level or os.environ.get("MODELREG_LOG_LEVEL", "INFO")).upper()
    as_json = json if json is not None else os.environ.get("MODELREG_LOG_FORMAT", "json") == "json"
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks if as_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)

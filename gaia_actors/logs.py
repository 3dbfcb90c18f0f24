"""structlog configuration: a JSON-lines file sink with rotation, and the console.

Configured once, at daemon start. The file sink is what ``tail`` reads: one
JSON object per line with ``timestamp`` (ISO 8601, UTC), ``level``, ``event`` and the bound
``actor``/``env``/``pipeline_id``. Pykka and other stdlib loggers are routed through the
same handlers, so an actor crash is never invisible (Pykka logs crashes
through a NullHandler otherwise).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog

from gaia_actors.errors import GaiaError
from gaia_actors.settings import LoggingSettings

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_handlers: list[logging.Handler] = []


def shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]


def configure(
    settings: LoggingSettings, log_path: Path | None, console: TextIO | None = None
) -> None:
    """Send every log record to the JSON-lines file and to the console."""
    level = _LEVELS[settings.level]
    shared = shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in _handlers:
        root.removeHandler(handler)
        handler.close()
    _handlers.clear()
    if log_path is not None:
        _handlers.append(_file_handler(settings, log_path, shared))
    stream = console if console is not None else sys.stderr
    if settings.console != "off":
        _handlers.append(_console_handler(settings, stream, shared))
    for handler in _handlers:
        root.addHandler(handler)
    root.setLevel(level)
    pykka_logger = logging.getLogger("pykka")
    pykka_logger.setLevel(max(level, logging.INFO))
    if not any(isinstance(f, ExpectedFailures) for f in pykka_logger.filters):
        pykka_logger.addFilter(ExpectedFailures())


class ExpectedFailures(logging.Filter):
    """Drop Pykka's traceback for failures we raise on purpose (a process exited, a fault was
    injected): the supervisor's ``supervisor.child_failed`` event already reports them, and a
    traceback there would read like a bug. Unexpected exceptions keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, GaiaError)


def _file_handler(settings: LoggingSettings, path: Path, shared: list[Any]) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=settings.file_max_bytes, backupCount=settings.file_backups, encoding="utf-8"
    )
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(default=str),
            ],
            foreign_pre_chain=shared,
        )
    )
    return handler


def _console_handler(
    settings: LoggingSettings, stream: TextIO, shared: list[Any]
) -> logging.Handler:
    pretty = settings.console == "pretty" or (settings.console == "auto" and stream.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if pretty
        else structlog.processors.JSONRenderer(default=str)
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    return handler


def shutdown() -> None:
    """Flush and close the sinks (the daemon's last step)."""
    root = logging.getLogger()
    for handler in _handlers:
        handler.flush()
        root.removeHandler(handler)
        handler.close()
    _handlers.clear()

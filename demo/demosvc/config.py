"""Settings from environment variables, parsed once at start.

Every error names the variable; ``app.main`` turns a ConfigError into exit code 2.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_PORT = 65535


class ConfigError(Exception):
    """A missing or invalid environment variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service reads from its environment."""

    port: int
    data_dir: Path
    host: str = "127.0.0.1"
    release_id: str = "dev"
    log_level: str = "info"
    env_name: str | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "app.db"


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from ``environ``; raise ConfigError naming the first bad variable."""
    return Settings(
        port=_parse_port(_required(environ, "PORT")),
        data_dir=_parse_data_dir(_required(environ, "DATA_DIR")),
        host=_non_empty(environ, "HOST", "127.0.0.1"),
        release_id=_non_empty(environ, "RELEASE_ID", "dev"),
        log_level=_parse_log_level(environ.get("LOG_LEVEL", "info")),
        env_name=environ.get("ENV_NAME") or None,
    )


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(name, "is required but not set")
    return value


def _non_empty(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name)
    if value is None:
        return default
    if not value.strip():
        raise ConfigError(name, "is set but empty")
    return value.strip()


def _parse_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ConfigError("PORT", f"expected an integer 0-{MAX_PORT}, got {text!r}") from None
    # 0 asks the kernel for a free port; the chosen one is logged (service.listening).
    if not 0 <= port <= MAX_PORT:
        raise ConfigError("PORT", f"expected an integer 0-{MAX_PORT}, got {port}")
    return port


def _parse_data_dir(text: str) -> Path:
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError("DATA_DIR", f"{path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("DATA_DIR", f"cannot create {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError("DATA_DIR", f"{path} is not writable")
    return path


def _parse_log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ConfigError("LOG_LEVEL", f"expected one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return level

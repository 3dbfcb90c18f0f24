"""Loading: the TOML file read, ``GAIA_*`` overrides applied, every value converted and checked,
then ``${NAME}`` in the receivers' secret fields replaced from the environment."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gaia_actors.errors import ConfigError
from gaia_actors.settings.alerts import SECRET, SECRET_FIELDS
from gaia_actors.settings.conversion import convert, type_hints
from gaia_actors.settings.sections import DaemonSettings, Settings
from gaia_actors.settings.validation import check, check_receiver_url

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "gaia.toml"


_SECTIONS = {f.name for f in dataclasses.fields(Settings)} - {"config_path", "state_dir"}


def load(
    path: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    secrets: bool = True,
) -> Settings:
    """Read, override and validate the configuration. Raises ConfigError.

    Without ``secrets`` (the commands that send no alert themselves), a receiver's ``${NAME}``
    whose variable is unset is left as written instead of refused; ``with_secrets`` refuses
    it later where one is sent."""
    environ = os.environ if environ is None else environ
    if path is not None and not str(path).strip():
        # `--config "$UNSET"`: running on the default file instead would be a surprise.
        raise ConfigError("--config", "", "the path is empty; name the configuration file")
    config_path = Path(path or environ.get("GAIA_CONFIG") or DEFAULT_CONFIG).resolve()
    raw = _read_toml(config_path)
    _apply_overrides(raw, environ, str(config_path))
    where = str(config_path)
    unknown = set(raw) - _SECTIONS
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(
            where, name, f"unknown section; sections are: {', '.join(sorted(_SECTIONS))}"
        )
    hints = type_hints(Settings)
    sections = {name: convert(hints[name], raw[name], where, name) for name in raw}
    state_dir = _state_dir(config_path, sections.get("daemon"), environ)
    settings = Settings(config_path=config_path, state_dir=state_dir, **sections)
    if environ.get("GAIA_DATABASE_URL"):
        settings = dataclasses.replace(
            settings, store=dataclasses.replace(settings.store, url=environ["GAIA_DATABASE_URL"])
        )
    check(settings, where)
    return _resolve_secrets(settings, environ, where, strict=secrets)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            str(path), "", "file not found (set GAIA_CONFIG or pass --config)"
        ) from None
    except PermissionError:
        raise ConfigError(str(path), "", "file is not readable (permission denied)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path), "", f"not UTF-8 text (byte {exc.start}): {exc.reason}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(str(path), "", "is a directory, expected a TOML file") from None


def _apply_overrides(raw: dict[str, Any], environ: Mapping[str, str], where: str) -> None:
    for name, value in environ.items():
        if not name.startswith("GAIA_") or "__" not in name:
            continue
        keys = [k.lower() for k in name[len("GAIA_") :].split("__")]
        if not all(keys):
            raise ConfigError(where, name, "malformed override name (empty key between '__')")
        table = raw
        for key in keys[:-1]:
            nested = table.setdefault(key, {})
            if not isinstance(nested, dict):
                raise ConfigError(
                    where, name, f"override goes through {key!r}, which is not a table"
                )
            table = nested
        table[keys[-1]] = _parse_override(value)


def _parse_override(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _state_dir(
    config_path: Path, daemon: DaemonSettings | None, environ: Mapping[str, str]
) -> Path:
    if environ.get("GAIA_STATE_DIR"):
        return Path(environ["GAIA_STATE_DIR"]).resolve()
    if daemon is not None and daemon.state_dir:
        if "\x00" in daemon.state_dir:
            raise ConfigError(str(config_path), "daemon.state_dir", "a path cannot hold a NUL byte")
        return (config_path.parent / daemon.state_dir).resolve()
    return (config_path.parent.parent / "var").resolve()


def with_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> Settings:
    """``settings`` with every receiver's ``${NAME}`` replaced, an unset variable refused
    (ConfigError naming the file, the key and the variable)."""
    environ = os.environ if environ is None else environ
    return _resolve_secrets(settings, environ, str(settings.config_path), strict=True)


def _resolve_secrets(
    settings: Settings, environ: Mapping[str, str], where: str, strict: bool
) -> Settings:
    """Each ``${NAME}`` in a receiver's secret-bearing keys replaced by the variable's value
    (an unset one refused when ``strict``, else left as written); then its URL checked."""

    def one(text: str, key: str) -> str:
        def value(match: re.Match[str]) -> str:
            if match[1] in environ:
                return environ[match[1]]
            if strict:
                raise ConfigError(where, key, f"environment variable {match[1]} is not set")
            return match[0]

        return SECRET.sub(value, text)

    receivers = []
    for i, receiver in enumerate(settings.alerts.receivers):
        key = f"alerts.receivers[{i}]"
        changes: dict[str, Any] = {
            name: one(getattr(receiver, name), f"{key}.{name}")
            for name in SECRET_FIELDS
            if name != "headers"
        }
        changes["headers"] = {k: one(v, f"{key}.headers.{k}") for k, v in receiver.headers.items()}
        receivers.append(dataclasses.replace(receiver, **changes))
        check_receiver_url(where, key, receivers[-1])
    alerts = dataclasses.replace(settings.alerts, receivers=tuple(receivers))
    return dataclasses.replace(settings, alerts=alerts)


def python_executable() -> str:
    """The interpreter to run children with (never a pyenv shim: it costs ~170 ms a spawn)."""
    return sys.executable

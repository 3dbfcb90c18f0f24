"""Where an environment's files are: its directories, its ``current`` release, its commands
and health URL, derived from its settings, and the name of the actor that runs it.

The core's part of an environment: the environment actor, its recovery ladder (which runs
while the actor is down), the pipeline, the monitor and the commands all read it, so they
agree on where things are without importing one another.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from gaia_actors.errors import GaiaError
from gaia_actors.settings import EnvironmentSettings, Settings, expand, python_executable
from supervisors.records import record

if TYPE_CHECKING:
    from gaia_actors.process import LogSink

CURRENT = "current"  # <env_dir>/current -> releases/<id>, the release that runs


class ReleaseError(GaiaError):
    """A release cannot be built, found or read; ``path`` names where."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}")


_ACTOR_PREFIX = "environment."


def actor_name(env: str) -> str:
    """The registry name of the actor that runs environment ``env``."""
    return f"{_ACTOR_PREFIX}{env}"


def env_of(actor: str) -> str | None:
    """The environment whose actor is named ``actor``; None for any other actor."""
    return actor.removeprefix(_ACTOR_PREFIX) if actor.startswith(_ACTOR_PREFIX) else None


def current_release(env_dir: Path) -> str | None:
    """The release id ``current`` names (None when there is no ``current``). It may be
    dangling only after outside interference; ``releases.repair`` mends that."""
    try:
        target = os.readlink(env_dir / CURRENT)
    except FileNotFoundError:
        return None
    except OSError as exc:  # EINVAL: something that is not a symlink
        raise ReleaseError(env_dir / CURRENT, f"not a symlink ({exc})") from exc
    return PurePosixPath(target).name


@record
class Layout:
    """Where one environment lives."""

    name: str
    config: EnvironmentSettings
    root: Path
    source: Path

    @classmethod
    def of(cls, settings: Settings, env: str) -> Layout:
        config = settings.environments[env]
        return cls(env, config, settings.env_dir(env), settings.resolve(config.source))

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pidfile(self) -> Path:
        return self.root / "pid"

    @property
    def started_with(self) -> Path:
        """What the process the pid file names was started with (argv and the configured
        environment values), to tell a changed configuration at adoption."""
        return self.root / "pid.command"

    @property
    def verified(self) -> Path:
        """The process (pid file format) that last passed its start-up health check: the
        failover agent's start grace ends there, whatever restarted in between."""
        return self.root / "verified"

    @property
    def current(self) -> Path:
        return self.root / CURRENT

    @property
    def log_sink(self) -> LogSink:
        # Every environment of this state directory shares one log pump process.
        from gaia_actors.process import LogSink

        return LogSink(
            self.logs / "app.log",
            self.config.log_max_bytes,
            self.config.log_backups,
            pump=self.root.parent,
        )

    @property
    def health_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}{self.config.health_path}"

    def make_dirs(self) -> None:
        for path in (self.releases, self.data, self.backups, self.logs):
            path.mkdir(parents=True, exist_ok=True)

    def substitutions(self, release_id: str) -> dict[str, str]:
        return {
            "python": python_executable(),
            "port": str(self.config.port),
            "host": self.config.host,
            "data_dir": str(self.data),
            "release_id": release_id,
            "name": self.name,
            "env_dir": str(self.root),
        }

    def argv(self, release_id: str) -> list[str]:
        values = self.substitutions(release_id)
        return [expand(part, values) for part in self.config.command]

    def build_argv(self) -> list[str] | None:
        values = {"python": python_executable()}
        return [expand(part, values) for part in self.config.build] or None

    def configured_env(self, release_id: str) -> dict[str, str]:
        """The environment values the configuration sets (on top of the daemon's own)."""
        values = self.substitutions(release_id)
        return {key: expand(value, values) for key, value in self.config.env.items()}

    def process_env(self, release_id: str) -> dict[str, str]:
        return {**os.environ, **self.configured_env(release_id)}

    def command_record(self, release_id: str) -> dict[str, object]:
        return {"argv": self.argv(release_id), "env": self.configured_env(release_id)}

    def current_release(self) -> str | None:
        return current_release(self.root)

    def service_pids(self) -> list[int]:
        """Processes running from one of this environment's releases (their working
        directory is inside ``releases/``), whatever started them. Build commands, which
        run in ``releases/<id>.<x>.tmp``, are not services and are left out."""
        releases_dir = os.path.realpath(self.releases) + os.sep
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                cwd = os.readlink(f"/proc/{entry.name}/cwd")
            except OSError:
                continue  # gone, or another user's
            if not cwd.startswith(releases_dir):
                continue
            release = cwd[len(releases_dir) :].split(os.sep, 1)[0]
            if not release.endswith(".tmp"):
                found.append(int(entry.name))
        return sorted(found)

    def data_bytes(self) -> int:
        return _tree_size(self.data)

    def log_bytes(self) -> int:
        return _tree_size(self.logs)


def _tree_size(path: Path) -> int:
    total = 0
    for entry in path.rglob("*") if path.exists() else ():
        try:
            if entry.is_file() and not entry.is_symlink():
                total += entry.stat().st_size
        except OSError:
            continue  # removed while we walked: a size is an estimate anyway
    return total


def port_in_use(host: str, port: int) -> bool:
    """True when something else listens on ``host:port`` (we could not bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False

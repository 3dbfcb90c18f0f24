"""One environment's directories, commands and health URL, derived from its settings.

Shared by the environment actor, its recovery ladder (which runs while the actor is down)
and the commands, so all three agree on where things are.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gaia_actors import process
from gaia_actors.environments import releases
from gaia_actors.health import BodyRule, judge, read_json, unanswered
from gaia_actors.settings import EnvironmentSettings, Settings, expand, python_executable


@dataclass(frozen=True, slots=True)
class Layout:
    """Where one environment lives (DESIGN.md, Environments on disk)."""

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
    def verified(self) -> Path:
        """The process (pid file format) that last passed its start-up health check: the
        failover agent's start grace ends there, whatever restarted in between."""
        return self.root / "verified"

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def log_sink(self) -> process.LogSink:
        return process.LogSink(
            self.logs / "app.log", self.config.log_max_bytes, self.config.log_backups
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

    def process_env(self, release_id: str) -> dict[str, str]:
        values = self.substitutions(release_id)
        extra = {key: expand(value, values) for key, value in self.config.env.items()}
        return {**os.environ, **extra}

    def current_release(self) -> str | None:
        return releases.current_release(self.root)

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


def check_health(url: str, timeout: float = 1.0, rule: BodyRule | None = None) -> tuple[bool, str]:
    """One GET of a health URL (its query string kept): (healthy, why), by the project's one
    health verdict (gaia_actors/health.py)."""
    parsed = urlsplit(url)
    deadline = time.monotonic() + timeout
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=timeout)
    target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        body = _read_until(response, deadline, 65_536)
    except (OSError, http.client.HTTPException) as exc:
        return False, unanswered(f"{type(exc).__name__}: {exc}").reason
    finally:
        conn.close()
    content, problem = read_json(response.getheader("Content-Type"), body)
    verdict = judge(response.status, content, rule or BodyRule(), body_problem=problem)
    return verdict.healthy, verdict.reason


def _read_until(response: http.client.HTTPResponse, deadline: float, limit: int) -> bytes:
    # The socket timeout bounds each read, not the body: a server trickling a byte at a time
    # would hold a single read() for ever. Read in pieces against one deadline.
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        if time.monotonic() > deadline:
            raise TimeoutError("the health body did not arrive in time")
        chunk = response.read1(min(4096, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def wait_healthy(
    url: str,
    timeout: float,
    cancel: threading.Event | None = None,
    interval: float = 0.05,
    rule: BodyRule | None = None,
) -> tuple[bool, str]:
    """Poll ``url`` until it is healthy or ``timeout`` passes (or ``cancel`` is set)."""
    deadline = time.monotonic() + timeout
    why = "not checked"
    while time.monotonic() < deadline:
        ok, why = check_health(url, min(1.0, max(0.1, deadline - time.monotonic())), rule)
        if ok:
            return True, why
        if cancel is not None and cancel.wait(interval):
            return False, "cancelled"
        if cancel is None:
            time.sleep(interval)  # polling a child's port; not a test synchronisation
    return False, f"not healthy within {timeout:g}s (last: {why})"

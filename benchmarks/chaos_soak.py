"""Chaos soak: the real daemon under a seeded storm of faults.

    python benchmarks/chaos_soak.py [--seed N] [--duration S] [--settle S] [--json]

The daemon runs as a subprocess (``run.py``) on a copy of the shipped ``config/gaia.toml``
with free loopback ports, short intervals and its state in a temp directory
(``GAIA_STATE_DIR``). A bounded loop then injects faults, drawn from ``random.Random(seed)``:

- ``kill_process``: SIGKILL of an environment's service process (pid from its pid file);
- ``crash_actor`` / ``hang_actor``: ``crash ACTOR`` / ``hang ACTOR SECONDS`` on the control
  socket (any worker actor: the environments, store, bus, monitoring, control ...);
- ``hang_health``: ``POST /admin/fault {"hang": true}`` on a service, so its process lives
  but ``/health`` never answers (the failover agent must fail it over); cleared later if the
  same process still runs;
- ``corrupt_backup``: two fresh backups, then bytes flipped in the newest one's database,
  then ``restore ENV``: the restore must skip the corrupt backup and use the other;
- ``promote``: ``promote dev`` / ``promote staging`` when the daemon has a pipeline;
- ``port_squatter``, ``corrupt_db``, ``deleted_db``: data faults (soak_data.py): another
  program takes a killed service's port for a few seconds; the database overwritten with
  garbage under a paused, then killed service; the database deleted under a running one.
  A marker row is written before each: none may be lost unless a backup restore was the
  only way back, and then the replaced data must be kept.

Kinds, targets and pauses come from the seed; whether a target is eligible at a given moment
depends on the daemon (a target must be running and healthy, and no supervisor's restart
budget may be spent by the chaos itself: faults are paced to stay within
``[supervision] max_restarts`` per ``max_seconds``, so the soak exercises recovery, not the
operator-reset path, which has its own tests).

After the loop: faults cleared, a settle period, then the report, from the store (events,
health checks, incidents, pipelines, stages) and the daemon's log:

- faults injected by kind, recoveries, time to detect and to recover (median, p95, max);
- stuck actors (any actor not ``running``; must be 0), environments unhealthy at the end
  (must be 0), marker rows lost (must be 0), lost records (must be 0): events the bus
  logged but the store lacks, health checks missing from the schedule (gaps beyond the
  monitor's tolerance, outside the monitor's own restarts), pipelines/stages rows vs
  promotions started;
- the daemon's RSS and thread count at start, end and peak (``/proc/<pid>/status``).

Exit status: 0 when every must-be-0 is 0, 1 otherwise, 2 when the daemon did not come up.
The daemon harness here (``Harness``, ``soak_config``) is shared by crash_consistency.py and
resources.py.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.soak_data import DataFaults  # noqa: E402 - needs the sys.path entry above
from gaia_actors.app import supervisor_config  # noqa: E402
from gaia_actors.console.client import Client, RemoteError  # noqa: E402
from gaia_actors.environments import tree as environments_tree  # noqa: E402
from gaia_actors.errors import ControlError  # noqa: E402
from gaia_actors.settings import Settings, load  # noqa: E402
from supervisors import Strategy  # noqa: E402

SHIPPED_CONFIG = REPO / "config" / "gaia.toml"
DEMO = REPO / "demo"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_UP = 2

# Faults aimed at a supervisor's children count against that supervisor's restart budget.
ENV_SUPERVISOR = "environments"
ROOT = "root"
Window = tuple[float, float]
# Actors whose crash restarts (rest_for_one) everything started after them, environments too.
CASCADING = ("store", "bus")
PROMOTION_TIMEOUT = 900.0  # seconds a promotion may take before the harness gives up on it
# The monitor and the actors it depends on (started before it under rest_for_one).
MONITOR_DEPENDS = ("store", "bus", "environments", "monitor")
CORRUPTION_SPACING = 15.0  # seconds between corrupt-backup faults (each takes two backups)
DATA_SPACING = 15.0  # seconds between data faults that restore (each restarts its service)
DATA_CHECK_INTERVAL = 1.0  # seconds between the environments' looks for lost databases


# --------------------------------------------------------------------------- configuration


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports nobody listens on (bound, read, released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def shipped_config() -> dict[str, Any]:
    with SHIPPED_CONFIG.open("rb") as fh:
        return tomllib.load(fh)


def local_config(environments: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The shipped configuration on free loopback ports, with absolute paths and no console.

    ``environments`` replaces the shipped ones (each entry is merged over the shipped
    ``prod`` environment's keys); ports are always reassigned.
    """
    config = shipped_config()
    shipped_envs: dict[str, dict[str, Any]] = config["environments"]
    if environments is not None:
        template = shipped_envs["prod"]
        shipped_envs = {name: {**template, **keys} for name, keys in environments.items()}
        # The shipped promotions name dev, staging and prod.
        config["pipeline"] = {
            k: v for k, v in config.get("pipeline", {}).items() if not isinstance(v, list)
        }
    ports = free_ports(len(shipped_envs) + 1)
    config["environments"] = {
        name: {**keys, "port": port, "source": str(DEMO)}
        for (name, keys), port in zip(shipped_envs.items(), ports, strict=False)
    }
    config["logging"] = {**config.get("logging", {}), "console": "off", "level": "info"}
    config["metrics"] = {**config.get("metrics", {}), "listen": f"127.0.0.1:{ports[-1]}"}
    config.setdefault("improve", {})["target"] = str(REPO)
    return config


def soak_config(
    *,
    monitor_interval: float = 1.0,
    backup_every: float = 10.0,
    metrics_interval: float = 2.0,
    max_seconds: float = 10.0,
    health_soak: float = 2.0,
    environments: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """``local_config`` with short intervals: checks, scrapes, backups, the restart window
    and the promotions' health soak windows."""
    config = local_config(environments)
    for env in config["environments"].values():
        if env.get("backup_schedule", "none") != "none":
            env["backup_schedule"] = str(backup_every)
            env["restore_on_data_loss"] = True
            env["data_check_interval"] = DATA_CHECK_INTERVAL
    config["monitor"] = {**config.get("monitor", {}), "interval": monitor_interval}
    config["monitor"]["read_timeout"] = 1.0
    config["metrics"]["interval"] = metrics_interval
    config["supervision"] = {**config.get("supervision", {}), "max_seconds": max_seconds}
    for stages in config.get("pipeline", {}).values():
        for stage in stages if isinstance(stages, list) else ():
            if stage.get("kind") == "health":  # health soak windows are intervals too
                stage["soak"] = min(float(stage.get("soak", 0.0)), health_soak)
    return config


def to_toml(data: Mapping[str, Any]) -> str:
    """A TOML document for ``data`` (tables, arrays of tables, scalars, lists of scalars)."""
    lines: list[str] = []
    _emit_table(lines, data, ())
    return "\n".join(lines) + "\n"


def _emit_table(lines: list[str], table: Mapping[str, Any], path: tuple[str, ...]) -> None:
    subtables = []
    for key, value in table.items():
        if _is_table(value):
            subtables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in subtables:
        sub_path = (*path, key)
        header = ".".join(_key(k) for k in sub_path)
        if isinstance(value, Mapping):
            lines.append(f"\n[{header}]")
            _emit_table(lines, value, sub_path)
        else:
            for item in value:
                lines.append(f"\n[[{header}]]")
                _emit_table(lines, item, sub_path)


def _is_table(value: Any) -> bool:
    if isinstance(value, Mapping):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


# --------------------------------------------------------------------------- the daemon


def http_get(port: int, path: str, timeout: float = 0.5) -> tuple[int, bytes]:
    """One GET on 127.0.0.1; (0, b"") when it fails or times out."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read(65_536)
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


def http_json(port: int, method: str, path: str, body: Any, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def proc_status(pid: int) -> dict[str, int]:
    """RSS (bytes), thread count and open descriptors of ``pid`` from /proc; {} when it is
    gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key == "VmRSS":
            values["rss"] = int(rest.split()[0]) * 1024
        elif key == "Threads":
            values["threads"] = int(rest.strip())
    values["fds"] = fds
    return values


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Re-check ``predicate`` until truthy (returned) or ``timeout`` (then None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)  # polling a subprocess's state: there is nothing to wait on


@dataclass
class Harness:
    """The daemon as a subprocess on its own state directory, and ways to talk to it."""

    workdir: Path
    config: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None
    _client: Client | None = None

    @property
    def config_path(self) -> Path:
        return self.workdir / "config" / "gaia.toml"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "control.sock"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "gaia.db"

    @property
    def envs(self) -> dict[str, dict[str, Any]]:
        envs: dict[str, dict[str, Any]] = self.config["environments"]
        return envs

    def settings(self) -> Settings:
        return load(self.config_path, environ={"GAIA_STATE_DIR": str(self.state_dir)})

    def port(self, env: str) -> int:
        return int(self.envs[env]["port"])

    def env_dir(self, env: str) -> Path:
        return self.state_dir / "environments" / env

    # Life cycle

    def write_config(self) -> None:
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(to_toml(self.config), encoding="utf-8")

    def start(self) -> float:
        """Start the daemon; returns the time.monotonic() it was spawned at."""
        self.write_config()
        environ = {**os.environ, "GAIA_STATE_DIR": str(self.state_dir)}
        environ.pop("GAIA_CONFIG", None)
        out = (self.workdir / "daemon.out").open("ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "run.py"), "--config", str(self.config_path), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=self.workdir,
        )
        out.close()
        return started

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_up(self, timeout: float) -> bool:
        """The control socket answers and every environment's /health is 200."""

        def up() -> bool:
            if not self.alive():
                raise RuntimeError(f"the daemon exited with {self.process_code()}: {self.tail()}")
            return self.ping() and self.all_healthy()

        return bool(wait_for(up, timeout))

    def process_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def tail(self, lines: int = 20) -> str:
        path = self.workdir / "daemon.out"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait (the daemon's clean shutdown); SIGKILL after ``timeout``."""
        self.close_client()
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the daemon alone (its services live on, in their own process groups)."""
        self.close_client()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def kill_services(self) -> None:
        """SIGKILL every service process an environment's pid file names (cleanup)."""
        for env in self.envs:
            pid = self.service_pid(env)
            if pid is not None:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)

    # Environments

    def service_pid(self, env: str) -> int | None:
        try:
            raw = json.loads((self.env_dir(env) / "pid").read_text())
            pid = int(raw["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def healthy(self, env: str) -> bool:
        status, _ = http_get(self.port(env), "/health", timeout=0.5)
        return status == 200

    def all_healthy(self) -> bool:
        return all(self.healthy(env) for env in self.envs)

    def health_body(self, env: str) -> dict[str, Any]:
        status, body = http_get(self.port(env), "/health", timeout=1.0)
        if status != 200:
            return {}
        try:
            value = json.loads(body)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    # The control socket

    def client(self, timeout: float) -> Client:
        if self._client is None:
            self._client = Client.connect(self.socket_path, timeout=2.0)
        self._client.sock.settimeout(timeout)  # a reply that never comes must not hang us
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def call(self, op: str, timeout: float = 10.0, **fields: Any) -> Any:
        """One control request; reconnects once if the control server restarted."""
        for attempt in (1, 2):
            try:
                return self.client(timeout).call(op, **fields)
            except ControlError:
                self.close_client()
                if attempt == 2:
                    raise
            except OSError:
                self.close_client()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def command(self, name: str, timeout: float = 30.0, **args: Any) -> Any:
        return self.call("command", timeout=timeout, name=name, args=args)

    def ping(self) -> bool:
        try:
            self.call("ping", timeout=2.0)
        except (ControlError, OSError):
            return False
        return True

    def actors(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("actors", timeout=5.0)
        return result

    def commands(self) -> set[str]:
        return {c["name"] for c in self.call("commands", timeout=5.0)}


@contextlib.contextmanager
def running_daemon(
    config: dict[str, Any], workdir: Path | None = None, keep: bool = False
) -> Iterator[Harness]:
    """A Harness in a temp directory; on exit the daemon and any service it left are killed."""
    made = workdir is None
    root = Path(tempfile.mkdtemp(prefix="gaia-chaos-")) if workdir is None else workdir
    harness = Harness(root, config)
    try:
        yield harness
    finally:
        if harness.alive():
            harness.stop(timeout=30)
        harness.kill_services()
        if made and not keep:
            shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    kind: str
    target: str
    at: float  # time.time() of the injection
    pid: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # a check that failed at injection time (corrupt_backup)
    detected: float | None = None
    recovered: float | None = None

    @property
    def time_to_detect(self) -> float | None:
        return None if self.detected is None else self.detected - self.at

    @property
    def time_to_recover(self) -> float | None:
        if self.detected is None or self.recovered is None:
            return None
        return self.recovered - self.detected


class Budget:
    """Paces faults so the chaos alone never spends a supervisor's restart budget.

    Each fault is booked at the time its failure is expected to reach the supervisor (a hang
    is noticed only after the ping timeout); a supervisor takes a new one only while fewer
    than ``max_restarts - 1`` bookings lie within ``window`` of that time either side (one
    restart is left spare for a fault's side effects).
    """

    def __init__(self, max_restarts: int, window: float) -> None:
        self.allowed = max(1, max_restarts - 1)
        self.window = window
        self.booked: dict[str, list[float]] = {}

    def ok(self, supervisor: str, expected: float) -> bool:
        near = [t for t in self.booked.get(supervisor, []) if abs(t - expected) < self.window]
        return len(near) < self.allowed

    def take(self, supervisor: str, expected: float) -> None:
        self.booked.setdefault(supervisor, []).append(expected)


@dataclass
class View:
    """What the injector sees before each fault."""

    states: dict[str, str]  # actor -> state
    healthy: dict[str, bool]  # env -> /health 200
    parents: dict[str, str] = field(default_factory=dict)  # actor -> its supervisor

    @property
    def calm(self) -> bool:
        return all(s == "running" for s in self.states.values()) and all(self.healthy.values())

    def ancestors(self, name: str) -> list[str]:
        """The supervisors above ``name``, nearest first, up to the root."""
        chain: list[str] = []
        node = self.parents.get(name)
        while node and node not in chain:
            chain.append(node)
            node = self.parents.get(node)
        return chain


class Injector:
    """Draws faults from the seed and applies them to a running daemon."""

    def __init__(self, harness: Harness, seed: int, promotions: bool) -> None:
        self.h = harness
        self.rng = random.Random(seed)
        sup = harness.config.get("supervision", {})
        # A hang is noticed within the ping timeout plus two ticks; it outlasts that.
        self.hang_noticed = {
            supervisor: timeout + 2 * float(sup.get("ping_interval", 1.0))
            for supervisor, timeout in ping_timeouts(harness.settings()).items()
        }
        monitor, failover = harness.config["monitor"], harness.config.get("failover", {})
        round_s = float(monitor["interval"]) + float(monitor.get("read_timeout", 2.0))
        self.health_noticed = round_s * int(failover.get("down_checks", 3)) + 1.0
        window = float(sup.get("max_seconds", 30.0)) + 2.0
        self.budget = Budget(int(sup.get("max_restarts", 3)), window)
        flap_window = float(failover.get("flap_window", 300.0))
        self.flaps = Budget(int(failover.get("flap_max", 5)), flap_window)
        self.last_corruption = 0.0
        self.promoter = Promoter(harness.socket_path)
        self.faults: list[Fault] = []
        self.hung_health: list[Fault] = []
        self.backup_envs = [
            e for e, c in harness.envs.items() if c.get("backup_schedule", "none") != "none"
        ]
        self.kinds = {
            "kill_process": 4,
            "crash_actor": 3,
            "hang_actor": 1,
            "hang_health": 1,
            "corrupt_backup": 1 if self.backup_envs else 0,
            "promote": 1 if promotions else 0,
            "port_squatter": 1,
            "corrupt_db": 1 if self.backup_envs else 0,
            "deleted_db": 1 if self.backup_envs else 0,
        }
        self.data = DataFaults(
            {env: harness.env_dir(env) for env in harness.envs},
            {env: harness.port(env) for env in harness.envs},
        )
        self.last_data_fault = 0.0
        self.skipped: Counter[str] = Counter()
        self.errors: list[str] = []
        self.exclude: set[str] = set()  # "kind:target" pairs never injected

    def view(self) -> View:
        try:
            actors = self.h.actors()
        except (ControlError, OSError):
            actors = []
        states = {a["name"]: a["state"] for a in actors if not a.get("supervisor")}
        parents = {a["name"]: a.get("parent") or ROOT for a in actors}
        healthy = {env: self.h.healthy(env) for env in self.h.envs}
        return View(states, healthy, parents)

    def step(self, remaining: float) -> Fault | None:
        """One draw: a kind, then an eligible target; None when nothing is eligible now.

        A fault that would be noticed only after the storm ends (``remaining`` seconds from
        now) is not injected: the harness would clear it before anything could notice it.
        """
        kinds = [k for k, w in self.kinds.items() if w]
        kind = self.rng.choices(kinds, weights=[self.kinds[k] for k in kinds])[0]
        pick = self.rng.random()  # drawn whatever happens, so the seed's sequence holds
        view = self.view()
        late = self._expected(kind, ENV_SUPERVISOR) - time.time() + 3.0 > remaining
        inject: Callable[[View, float], Fault | None] = getattr(self, f"_{kind}")
        fault = None if late else inject(view, pick)
        if fault is None:
            self.skipped[kind] += 1
            return None
        self.faults.append(fault)
        return fault

    def housekeeping(self, clear_after: float) -> None:
        """Clear a hung health endpoint whose process is still the same after a while."""
        now = time.time()
        self.data.release()
        for fault in list(self.hung_health):
            if now - fault.at < clear_after:
                continue
            self.hung_health.remove(fault)
            if self.h.service_pid(fault.target) == fault.pid:
                http_json(self.h.port(fault.target), "POST", "/admin/fault", {"hang": False})
                fault.problem = "still the same process after the clear-after period"

    def clear_all(self) -> None:
        """End of the storm: clear every fault knob. A hung endpoint whose process is still
        the same was cleared before anything noticed it: it is counted apart."""
        for fault in self.hung_health:
            if self.h.service_pid(fault.target) == fault.pid:
                fault.detail["cleared_at_end"] = True
        for env in self.h.envs:
            http_json(self.h.port(env), "DELETE", "/admin/fault", {})
        self.hung_health.clear()
        self.data.release(everything=True)

    # Targets

    def _choose(self, candidates: Sequence[str], pick: float) -> str | None:
        if not candidates:
            return None
        return sorted(candidates)[int(pick * len(candidates)) % len(candidates)]

    def _expected(self, kind: str, supervisor: str = ENV_SUPERVISOR) -> float:
        """When a fault of ``kind`` injected now reaches ``supervisor`` as a failure."""
        delay = {
            "hang_actor": self.hang_noticed.get(supervisor, self.hang_noticed[ROOT]),
            "hang_health": self.health_noticed,
        }.get(kind, 0.0)
        return time.time() + delay

    def _env_targets(self, view: View, kind: str) -> list[str]:
        if not self.budget.ok(ENV_SUPERVISOR, self._expected(kind)):
            return []
        return [
            env
            for env, ok in view.healthy.items()
            if ok and view.states.get(f"environment.{env}") == "running"
        ]

    def _kill_process(self, view: View, pick: float) -> Fault | None:
        env = self._choose(self._env_targets(view, "kill_process"), pick)
        pid = None if env is None else self.h.service_pid(env)
        if env is None or pid is None:
            return None
        now = time.time()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        self.budget.take(ENV_SUPERVISOR, now)
        return Fault("kill_process", env, now, pid)

    def _actor_targets(self, view: View, kind: str) -> list[tuple[str, str]]:
        targets = []
        for name, state in view.states.items():
            if state != "running" or f"{kind}:{name}" in self.exclude:
                continue
            supervisor = view.parents.get(name, ROOT)  # whose restart budget it spends
            if name.startswith("environment.") and not view.healthy.get(name.split(".", 1)[1]):
                continue
            if name in CASCADING and not view.calm:
                continue
            if self.budget.ok(supervisor, self._expected(kind, supervisor)):
                targets.append((name, supervisor))
        return targets

    def _actor_fault(self, kind: str, view: View, pick: float) -> Fault | None:
        targets = dict(self._actor_targets(view, kind))
        name = self._choose(list(targets), pick)
        if name is None:
            return None
        now = time.time()
        supervisor = targets[name]
        seconds = round(self.hang_noticed.get(supervisor, self.hang_noticed[ROOT]) + 2.0, 1)
        try:
            if kind == "crash_actor":
                self.h.command("crash", actor=name, reason="chaos soak")
            else:
                self.h.command("hang", actor=name, seconds=seconds)
        except RemoteError as exc:
            if exc.code != "not_running":  # restarting since the view was taken: no fault
                self.errors.append(f"{kind} {name}: {exc}")
            return None
        except (ControlError, OSError) as exc:
            self.errors.append(f"{kind} {name}: {exc}")
            return None
        self.budget.take(supervisor, self._expected(kind, supervisor))
        detail: dict[str, Any] = {"supervisor": supervisor, "ancestors": view.ancestors(name)}
        if kind == "hang_actor":
            detail["seconds"] = seconds
        return Fault(kind, name, now, detail=detail)

    def _crash_actor(self, view: View, pick: float) -> Fault | None:
        return self._actor_fault("crash_actor", view, pick)

    def _hang_actor(self, view: View, pick: float) -> Fault | None:
        return self._actor_fault("hang_actor", view, pick)

    def _hang_health(self, view: View, pick: float) -> Fault | None:
        # The failover agent damps flapping: beyond flap_max failovers of one environment in
        # flap_window it leaves the environment alone (by design); stay under that.
        when = self._expected("hang_health")
        targets = [e for e in self._env_targets(view, "hang_health") if self.flaps.ok(e, when)]
        env = self._choose(targets, pick)
        pid = None if env is None else self.h.service_pid(env)
        if env is None or pid is None:
            return None
        now = time.time()
        if http_json(self.h.port(env), "POST", "/admin/fault", {"hang": True}) != 200:
            return None
        self.budget.take(ENV_SUPERVISOR, when)
        self.flaps.take(env, when)
        fault = Fault("hang_health", env, now, pid)
        self.hung_health.append(fault)
        return fault

    def _corrupt_backup(self, view: View, pick: float) -> Fault | None:
        candidates = [e for e in self.backup_envs if view.healthy.get(e)]
        env = self._choose(candidates, pick)
        now = time.time()
        if now - self.last_corruption < CORRUPTION_SPACING:
            return None
        if env is None or view.states.get(f"environment.{env}") != "running":
            return None
        self.last_corruption = now
        try:
            good = self.h.command("backup", timeout=60, env=env)["backup"]
            bad = self.h.command("backup", timeout=60, env=env)["backup"]
            corrupt_backup(self.h.env_dir(env) / "backups" / bad)
            started = time.time()
            result = self.h.command("restore", timeout=120, env=env)
        except (ControlError, OSError, KeyError, TypeError) as exc:
            self.errors.append(f"corrupt_backup {env}: {exc}")
            return Fault("corrupt_backup", env, now, problem=f"backup/restore failed: {exc}")
        skipped = " ".join(str(s) for s in result.get("skipped", []))
        fault = Fault("corrupt_backup", env, now, detail={"good": good, "bad": bad})
        fault.detected, fault.recovered = started, time.time()
        used = str(result.get("backup"))
        # Backup ids sort by time: a scheduled backup newer than the corrupt one may be used.
        if used == bad or (bad not in skipped and used < bad):
            fault.problem = f"restore used {used!r}, skipped {skipped!r} (corrupted {bad!r})"
        return fault

    def _port_squatter(self, view: View, pick: float) -> Fault | None:
        env = self._choose(self._env_targets(view, "port_squatter"), pick)
        pid = None if env is None else self.h.service_pid(env)
        if env is None or pid is None or not self.data.mark(env):
            return None
        now = time.time()
        problem = self.data.port_squatter(env, pid)
        self.budget.take(ENV_SUPERVISOR, now)
        if problem:  # the environment was quicker: an ordinary kill
            return Fault("kill_process", env, now, pid, detail={"squat": problem})
        return Fault("port_squatter", env, now, pid)

    def _data_target(self, view: View, kind: str, pick: float) -> tuple[str, int] | None:
        """A backed-up environment to damage, paced so that restores do not pile up."""
        if time.time() - self.last_data_fault < DATA_SPACING:
            return None
        targets = [e for e in self._env_targets(view, kind) if e in self.backup_envs]
        env = self._choose(targets, pick)
        pid = None if env is None else self.h.service_pid(env)
        if env is None or pid is None:
            return None
        try:  # the restore needs a verified backup; the marker after it is not in it
            self.h.command("backup", timeout=60, env=env)
        except (ControlError, OSError) as exc:
            self.errors.append(f"{kind} {env}: backup failed: {exc}")
            return None
        if not self.data.mark(env):
            return None
        self.last_data_fault = time.time()
        self.budget.take(ENV_SUPERVISOR, self.last_data_fault)
        return env, pid

    def _corrupt_db(self, view: View, pick: float) -> Fault | None:
        target = self._data_target(view, "corrupt_db", pick)
        if target is None:
            return None
        env, pid = target
        now = time.time()
        return Fault("corrupt_db", env, now, pid, problem=self.data.corrupt_db(env, pid))

    def _deleted_db(self, view: View, pick: float) -> Fault | None:
        target = self._data_target(view, "deleted_db", pick)
        if target is None:
            return None
        env, pid = target
        now = time.time()
        return Fault("deleted_db", env, now, pid, problem=self.data.deleted_db(env))

    def _promote(self, view: View, pick: float) -> Fault | None:
        if not view.calm or self.promoter.busy():
            return None
        what = "dev" if pick < 0.5 else "staging"
        fault = Fault("promote", what, time.time())
        self.promoter.start(what, fault)
        return fault


class Promoter:
    """Runs one promotion at a time in a thread of its own (a promotion takes a while; the
    chaos goes on meanwhile), on its own control connection."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.thread: threading.Thread | None = None

    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, what: str, fault: Fault) -> None:
        self.thread = threading.Thread(
            target=self._run, args=(what, fault), name="promoter", daemon=True
        )
        self.thread.start()

    def join(self, timeout: float) -> bool:
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.busy()

    def _run(self, what: str, fault: Fault) -> None:
        frames: list[Any] = []
        try:
            with Client.connect(self.socket_path, timeout=2.0) as client:
                client.sock.settimeout(PROMOTION_TIMEOUT)
                result = client.command("promote", {"what": what}, frames.append)
            fault.detail["status"] = result.get("status")
            fault.detail["ids"] = [p["id"] for p in result.get("promotions", [])]
        except RemoteError as exc:
            # A failed promotion is a result ("promotion #N ... failed: ..."); a refusal
            # (busy, usage) started nothing.
            fault.detail["error"] = str(exc)[:300]
            fault.detail["ids"] = [int(n) for n in re.findall(r"#(\d+)", str(exc))[:1]]
            fault.detail["refused"] = exc.code != "failed"
        except (ControlError, OSError) as exc:
            fault.detail["error"] = f"connection: {exc}"[:300]
        said = " ".join(str(f.get("message", "")) for f in frames if isinstance(f, dict))
        ids = {int(n) for n in re.findall(r"#(\d+) ", said)}
        fault.detail["ids"] = sorted(ids | set(fault.detail.get("ids", [])))
        fault.recovered = time.time()


def ping_timeouts(settings: Settings) -> dict[str, float]:
    """The liveness timeout each supervisor applies to its children."""
    root = supervisor_config(settings, Strategy.ONE_FOR_ONE)
    envs = root.ping_timeout
    env_timeout = getattr(environments_tree, "ping_timeout", None)
    if env_timeout is not None:  # environment actors may stop a process inside a handler
        envs = env_timeout(settings, root)
    return {ROOT: root.ping_timeout, ENV_SUPERVISOR: envs}


def corrupt_backup(backup_dir: Path) -> Path:
    """Flip bytes in the middle of the first database of a backup (its sha256 changes)."""
    found = sorted(backup_dir.glob("*.db"))
    if not found:  # the daemon said it took this backup: a fault check, not a harness crash
        entries = sorted(p.name for p in backup_dir.iterdir()) if backup_dir.is_dir() else None
        raise FileNotFoundError(f"backup {backup_dir.name} has no database file: {entries}")
    db = found[0]
    data = bytearray(db.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + 64, len(data))):
        data[i] ^= 0xFF
    db.write_bytes(bytes(data))
    return db


# --------------------------------------------------------------------------- analysis


def read_events(db_path: Path) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT ts, name, env, data FROM events ORDER BY ts").fetchall()
    events = []
    for ts, name, env, data in rows:
        try:
            payload = json.loads(data) if data else {}
        except ValueError:
            payload = {}
        events.append({"ts": ts, "name": name, "env": env, **payload, "ts_": ts})
    return events


def match_faults(faults: Sequence[Fault], events: Sequence[dict[str, Any]]) -> None:
    """Fill each fault's detected/recovered times from the stored events.

    A fault is detected before the next fault of its kind on its target, or not at all: what
    comes after that is the next one's (a deletion the data-loss watch missed would otherwise
    count as detected, minutes late, by the alert of the next deletion)."""
    for index, fault in enumerate(faults):
        if fault.kind in ("corrupt_backup", "promote"):
            continue
        detect, recover = _patterns(fault)
        after = [e for e in events if e["ts_"] >= fault.at - 0.05]
        same = (
            f.at for f in faults[index + 1 :] if (f.kind, f.target) == (fault.kind, fault.target)
        )
        until = next(same, float("inf"))
        hit = next((e for e in after if e["ts_"] < until and detect(e)), None)
        if hit is None:
            continue
        fault.detected = hit["ts_"]
        done = next((e for e in after if e["ts_"] >= hit["ts_"] and recover(e)), None)
        fault.recovered = None if done is None else done["ts_"]


def _patterns(
    fault: Fault,
) -> tuple[Callable[[dict[str, Any]], bool], Callable[[dict[str, Any]], bool]]:
    target = fault.target

    # A faulty process is also over when its environment replaces it for another reason (a
    # failover already under way when it was killed, a promotion deploying over a hung one):
    # then the start of the replacement is when it was dealt with.
    def replaced(e: dict[str, Any]) -> bool:
        return (
            e["name"] == "environment.started" and e["env"] == target and e.get("pid") != fault.pid
        )

    if fault.kind == "kill_process":
        return (
            lambda e: (
                (e["name"] == "environment.exited" and e.get("pid") == fault.pid) or replaced(e)
            ),
            lambda e: e["name"] == "environment.healthy" and e["env"] == target,
        )
    if fault.kind in ("port_squatter", "corrupt_db", "deleted_db"):
        first = {
            "port_squatter": "environment.blocked",
            "corrupt_db": "alert.data_replaced",
            "deleted_db": "alert.data_loss",
        }[fault.kind]
        # A restore the environment ran itself ends with its own verdict, not a new start.
        back = ("environment.healthy", "environment.restore")
        return (
            lambda e: e["name"] == first and e["env"] == target,
            lambda e: e["name"] in back and e["env"] == target,
        )
    if fault.kind == "hang_health":
        return (
            lambda e: (
                (e["name"] in ("failover.triggered", "environment.exited") and e["env"] == target)
                or replaced(e)
            ),
            lambda e: e["name"] == "environment.healthy" and e["env"] == target,
        )
    # An actor is caught by its own failure, or stopped first by a group restart (rest_for_one)
    # that some other fault caused; either way its next start is the recovery.
    return (
        lambda e: (
            (
                e["name"] in ("supervisor.child_failed", "supervisor.child_hung")
                and e.get("child") == target
            )
            or (e["name"] == "supervisor.restart" and _in_group(fault, e.get("group") or ()))
        ),
        lambda e: e["name"] == "supervisor.child_started" and e.get("child") == target,
    )


def _in_group(fault: Fault, group: Sequence[str]) -> bool:
    """Whether a group restart stops the fault's target or any supervisor above it (a
    restart at the root stops ``services`` and, with it, ``improvement`` and its engine)."""
    above = fault.detail.get("ancestors") or [fault.detail.get("supervisor")]
    return fault.target in group or any(name in group for name in above)


def stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
    }


def read_log(log_dir: Path) -> list[dict[str, Any]]:
    """Every record of the daemon's JSON-lines log (rotated files too), with ``t`` in Unix
    seconds, oldest first."""
    records = []
    paths = sorted(log_dir.glob("gaia.jsonl*"), key=lambda p: -int(p.suffix[1:] or 0)
                   if p.suffix[1:].isdigit() else 0)  # fmt: skip
    for path in paths:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                record["t"] = datetime.fromisoformat(record["timestamp"]).timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            records.append(record)
    records.sort(key=lambda r: r["t"])
    return records


def outages(records: Sequence[dict[str, Any]], children: set[str], back: str) -> list[Window]:
    """Windows from a failure of one of ``children`` (failed, hung) to ``back``'s next start,
    from the log (supervisor events reach the log even when the bus or the store is down)."""
    windows = []
    down: float | None = None
    for r in records:
        event, child = r.get("event"), r.get("child")
        if event in ("supervisor.child_failed", "supervisor.child_hung") and child in children:
            down = r["t"] if down is None else down
        elif event == "supervisor.child_started" and child == back and down is not None:
            windows.append((down, r["t"]))
            down = None
    if down is not None:
        windows.append((down, float("inf")))
    return windows


def monitor_faults(faults: Sequence[Fault], records: Sequence[dict[str, Any]]) -> list[Window]:
    """From each crash or hang of the monitor (or of an actor it depends on) to the monitor's
    next start. The log's supervision lines can be late (a hung bus logs its backlog when
    the hang ends; a supervisor stopping a group logs after the stop), the injection is not."""
    starts = [r["t"] for r in records if r.get("event") == "supervisor.child_started"
              and r.get("child") == "monitor"]  # fmt: skip
    windows = []
    for f in faults:
        if f.kind in ("crash_actor", "hang_actor") and f.target in MONITOR_DEPENDS:
            end = next((t for t in starts if t > f.at), float("inf"))
            windows.append((f.at, end))
    return windows


def unstored_events(
    records: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]], late: float = 60.0
) -> list[dict[str, Any]]:
    """Events the bus logged, and supervision events the daemon logged while the bus was
    restarting (sent to it once it was back), that the store does not hold.

    The bus logs each event as it sends it to the store, in order, so each logged event is
    matched with the oldest stored one of the same name and environment created before it
    was logged, at most ``late`` seconds before (a hung bus logs its backlog late). Stored
    events the bus did not log (below the log level) are skipped over.
    """
    stored: dict[tuple[str, str], list[float]] = {}
    for e in events:
        stored.setdefault((e["name"], e["env"] or ""), []).append(e["ts_"])
    missing = []
    for r in records:
        event = str(r.get("event", ""))
        held = r.get("logger") == "gaia.daemon" and event.startswith("supervisor.")
        if not held and (r.get("logger") != "gaia.bus" or event.startswith(("actor.", "bus."))):
            continue  # the bus actor's own lines, not events
        times = stored.get((event, str(r.get("env", ""))), [])
        while times and times[0] < r["t"] - late:
            times.pop(0)
        if times and times[0] <= r["t"] + 0.5:
            times.pop(0)
        else:
            missing.append(r)
    return missing


@dataclass(frozen=True)
class Schedule:
    """What the health-check schedule promises between ``since`` and ``until``."""

    interval: float
    tolerance: float  # the longest gap between two checks of one environment
    excused: Sequence[Window]  # the monitor was down: no checks expected
    since: float
    until: float


def missing_health_checks(db_path: Path, envs: Sequence[str], schedule: Schedule) -> dict[str, int]:
    """Checks missing per environment: gaps longer than the tolerance between consecutive
    stored checks (less the monitor's own downtime), counted in intervals."""
    missing = {}
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        for env in envs:
            rows = conn.execute(
                "SELECT ts FROM health_checks WHERE env = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                (env, schedule.since, schedule.until),
            )
            times = [schedule.since, *[r[0] for r in rows], schedule.until]
            lost = 0
            for a, b in itertools.pairwise(times):
                gap = b - a - _overlap(a, b, schedule.excused)
                if gap > schedule.tolerance:
                    lost += int((gap - schedule.tolerance) // schedule.interval) + 1
            missing[env] = lost
    return missing


def _overlap(a: float, b: float, windows: Sequence[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, w1) - max(a, w0)) for w0, w1 in windows)


def incident_stats(db_path: Path, since: float) -> dict[str, Any]:
    """The incidents the failover agent recorded: by cause and status, with its own time to
    detect and to recover."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT cause, status, time_to_detect, time_to_recover FROM incidents "
            "WHERE started >= ?",
            (since,),
        ).fetchall()
    return {
        "by_cause_status": dict(Counter(f"{r[0]}/{r[1]}" for r in rows)),
        "time_to_detect": stats([r[2] for r in rows if r[2] is not None]),
        "time_to_recover": stats([r[3] for r in rows if r[3] is not None]),
    }


def pipeline_records(db_path: Path, since: float, ids: set[int]) -> dict[str, Any]:
    """The promotions since ``since`` as the store has them, against the ids the daemon
    announced (``ids``): missing rows, rows still running, rows without stages."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "pipelines" not in tables:
            return {"rows": 0, "stages": 0, "missing": sorted(ids), "running": [], "bare": []}
        rows = conn.execute(
            "SELECT id, status, (SELECT count(*) FROM stages s WHERE s.pipeline_id = p.id) "
            "FROM pipelines p WHERE started >= ?",
            (since,),
        ).fetchall()
    found = {row[0] for row in rows}
    return {
        "rows": len(rows),
        "stages": sum(row[2] for row in rows),
        "statuses": dict(Counter(row[1] for row in rows)),
        "missing": sorted(ids - found),
        "running": [row[0] for row in rows if row[1] == "running"],
        "bare": [row[0] for row in rows if row[2] == 0],
    }


# --------------------------------------------------------------------------- the soak


@dataclass
class Report:
    seed: int
    duration: float
    faults: dict[str, int]
    skipped_draws: dict[str, int]
    recoveries: int
    unrecovered: list[str]
    cleared_at_end: int  # hung endpoints the harness cleared before anything noticed them
    detect: dict[str, Any]
    recover: dict[str, Any]
    stuck_actors: list[str]
    unhealthy_envs: list[str]
    lost_records: dict[str, Any]
    lost_total: int
    fault_problems: list[str]
    harness_errors: list[str]
    ladder_steps: int
    incidents: dict[str, Any]  # the failover agent's own record (incidents table)
    daemon: dict[str, Any]
    daemon_exit: int | None

    leaks: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # the data faults' marker rows

    @property
    def ok(self) -> bool:
        rows_lost = self.data.get("rows_lost", 0)
        return not (
            self.stuck_actors or self.unhealthy_envs or self.lost_total or self.leaks or rows_lost
        )


@dataclass(frozen=True)
class SoakOptions:
    seed: int = 1
    duration: float = 180.0  # seconds of faults
    settle: float = 60.0  # seconds allowed to recover after the last fault
    pause: tuple[float, float] = (0.3, 1.5)  # seconds between draws, uniform
    clear_after: float = 20.0  # a hung health endpoint still on its process is cleared
    workdir: Path | None = None
    keep: bool = False
    exclude: tuple[str, ...] = ()  # "kind:target" pairs never injected (e.g. hang_actor:store)


def run_soak(options: SoakOptions, log: Callable[[str], None] = print) -> Report:
    with running_daemon(soak_config(), options.workdir, options.keep) as harness:
        return Soak(harness, options, log).run()


@dataclass
class Soak:
    """One soak on one daemon: warm up, storm, settle, measure."""

    h: Harness
    options: SoakOptions
    log: Callable[[str], None] = print
    since: float = 0.0
    until: float = 0.0
    samples: dict[str, dict[str, int]] = field(default_factory=dict)
    timeline: list[dict[str, int]] = field(default_factory=list)  # RSS, threads each minute
    stuck: list[str] = field(default_factory=list)
    unhealthy: list[str] = field(default_factory=list)
    exit_code: int | None = None

    def run(self) -> Report:
        self.h.start()
        if not self.h.wait_up(120):
            raise RuntimeError(f"the daemon did not come up: {self.h.tail()}")
        self.samples["start"] = proc_status(self.h.pid)
        self.samples["peak"] = dict(self.samples["start"])
        self.since = time.time()
        injector = Injector(self.h, self.options.seed, "promote" in self.h.commands())
        injector.exclude = set(self.options.exclude)
        self.log(
            f"daemon pid {self.h.pid} up; injecting faults for {self.options.duration:g}s "
            f"(seed {self.options.seed})"
        )
        self.storm(injector)
        if not injector.promoter.join(PROMOTION_TIMEOUT):
            injector.errors.append("a promotion was still running at the end")
        injector.clear_all()
        self.stuck, self.unhealthy = settle(self.h, self.options.settle)
        self.samples["end"] = proc_status(self.h.pid)
        self.until = time.time()
        self.exit_code = self.h.stop(timeout=60)
        return self.report(injector)

    def storm(self, injector: Injector) -> None:
        started = time.monotonic()
        deadline = started + self.options.duration
        peak = self.samples["peak"]
        while time.monotonic() < deadline:
            if not self.h.alive():
                raise RuntimeError(f"the daemon died during the soak: {self.h.tail()}")
            fault = injector.step(deadline - time.monotonic())
            if fault is not None:
                self.log(f"  {time.strftime('%H:%M:%S')} {fault.kind:<15} {fault.target}")
            injector.housekeeping(self.options.clear_after)
            status = proc_status(self.h.pid)
            for key, value in status.items():
                peak[key] = max(peak.get(key, 0), value)
            minute = int((time.monotonic() - started) // 60)
            if status and len(self.timeline) <= minute:
                self.timeline.append({"minute": minute, **status})
            time.sleep(injector.rng.uniform(*self.options.pause))  # the chaos's own pacing

    def report(self, injector: Injector) -> Report:
        events = read_events(self.h.db_path)
        # Up to the end of the settle: what the daemon logs while it shuts down (the bus stops
        # before the supervisors report the last stops) has nowhere to be stored.
        records = [r for r in read_log(self.h.state_dir / "logs") if r["t"] <= self.until]
        unstored = unstored_events(records, events)
        faults = injector.faults
        match_faults(faults, timeline(events, unstored, records))
        dump = [{**asdict(f), "time_to_detect": f.time_to_detect,
                 "time_to_recover": f.time_to_recover} for f in faults]  # fmt: skip
        (self.h.workdir / "faults.json").write_text(json.dumps(dump, indent=1, default=str))
        timed = [f for f in faults if f.kind not in ("corrupt_backup", "promote")]
        lost = self.lost_records(records, unstored, injector)
        return Report(
            seed=self.options.seed,
            duration=self.options.duration,
            faults=dict(Counter(f.kind for f in faults)),
            skipped_draws=dict(injector.skipped),
            recoveries=sum(1 for f in faults if f.recovered is not None and not f.problem),
            unrecovered=[
                f"{f.kind} {f.target} at {f.at:.3f}"
                for f in timed
                if not f.recovered and not f.detail.get("cleared_at_end")
            ],
            cleared_at_end=sum(1 for f in faults if f.detail.get("cleared_at_end")),
            detect=by_kind(timed, lambda f: f.time_to_detect),
            recover=by_kind(timed, lambda f: f.time_to_recover),
            stuck_actors=self.stuck,
            unhealthy_envs=self.unhealthy,
            lost_records=lost,
            lost_total=sum(lost[k] for k in LOST_KEYS),
            fault_problems=[f"{f.kind} {f.target}: {f.problem}" for f in faults if f.problem],
            harness_errors=injector.errors,
            ladder_steps=sum(1 for r in records if r.get("event") == "supervisor.ladder_step"),
            incidents=incident_stats(self.h.db_path, self.since),
            daemon={**self.samples, "each_minute": self.timeline},
            leaks=leaks(self.samples, len(self.h.envs)),
            daemon_exit=self.exit_code,
            data=injector.data.check(events),
        )

    def lost_records(
        self,
        records: Sequence[dict[str, Any]],
        unstored: Sequence[dict[str, Any]],
        injector: Injector,
    ) -> dict[str, Any]:
        checks = self.health_checks(records, injector.faults)
        # Events published while the store (or the bus) restarts wait in the daemon's outbox
        # and are stored once it is back: every event the log has must be in the store. The
        # ones logged during a store restart are shown apart, to see where a loss came from.
        store_down = [(a - 0.5, b + 0.5) for a, b in outages(records, {"store"}, "store")]
        in_restart = [r for r in unstored if any(a <= r["t"] <= b for a, b in store_down)]
        lost = list(unstored)
        promotions = [f for f in injector.faults if f.kind == "promote"]
        announced = {i for f in promotions for i in f.detail.get("ids", [])}
        pipes = pipeline_records(self.h.db_path, self.since, announced)
        return {
            **checks,
            "events_lost": len(lost),
            "events_lost_by_name": dict(Counter(str(r.get("event")) for r in lost)),
            "events_unstored_while_store_restarted": len(in_restart),
            "events_unstored_by_name": dict(Counter(str(r.get("event")) for r in in_restart)),
            "store_restarts": len(store_down),
            "pipelines_lost": len(pipes["missing"]),
            "pipelines_left_running": len(pipes["running"]),
            "pipelines_without_stages": len(pipes["bare"]),
            "promotions_requested": len(promotions),
            "promotions_refused": sum(1 for f in promotions if f.detail.get("refused")),
            "pipeline_ids_announced": len(announced),
            "pipeline_rows": pipes["rows"],
            "pipeline_statuses": pipes.get("statuses", {}),
            "stage_rows": pipes["stages"],
        }

    def health_checks(
        self, records: Sequence[dict[str, Any]], faults: Sequence[Fault]
    ) -> dict[str, Any]:
        monitor = self.h.config["monitor"]
        interval = float(monitor["interval"])
        # A round is due `interval` after the previous one started and may take the connect
        # and read timeouts; classifying and storing it takes a moment more.
        tolerance = interval + float(monitor.get("connect_timeout", 1.0))
        tolerance += float(monitor.get("read_timeout", 2.0)) + 1.0
        down = outages(records, set(MONITOR_DEPENDS), "monitor")
        down += monitor_faults(faults, records)
        schedule = Schedule(interval, tolerance, down, self.since + tolerance,
                            self.until - tolerance)  # fmt: skip
        missing = missing_health_checks(self.h.db_path, list(self.h.envs), schedule)
        return {
            "health_checks_lost": sum(missing.values()),
            "health_checks_by_env": missing,
            "health_check_tolerance_s": round(tolerance, 3),
        }


def leaks(samples: Mapping[str, Mapping[str, int]], envs: int) -> list[str]:
    """Threads and descriptors the daemon holds at the end beyond those at the start, past
    what adoption explains: after a restart of the environments each adopted service has a
    watcher thread and a pidfd with its wake pipe, while the reaper of the child it started
    stays (1 thread and 3 descriptors per environment), plus a small margin for requests
    in flight (the harness's own control connection, a backup finishing)."""
    start, end = samples.get("start", {}), samples.get("end", {})
    allowed = {"threads": envs + 4, "fds": 3 * envs + 6}
    return [
        f"{key}: {start[key]} at the start, {end[key]} at the end (allowed +{extra})"
        for key, extra in allowed.items()
        if key in start and key in end and end[key] - start[key] > extra
    ]


def settle(h: Harness, timeout: float) -> tuple[list[str], list[str]]:
    """Wait (bounded) for every actor running and every environment healthy; what is not."""

    def calm() -> bool:
        try:
            states = [a["state"] for a in h.actors()]
        except (ControlError, OSError):
            return False
        return all(s == "running" for s in states) and h.all_healthy()

    wait_for(calm, timeout, interval=0.5)
    try:
        stuck = [f"{a['name']}={a['state']}" for a in h.actors() if a["state"] != "running"]
    except (ControlError, OSError) as exc:
        stuck = [f"control socket: {exc}"]
    unhealthy = [env for env in h.envs if not h.healthy(env)]
    return stuck, unhealthy


def by_kind(
    faults: Sequence[Fault], value: Callable[[Fault], float | None]
) -> dict[str, dict[str, float] | None]:
    table = {}
    for kind in sorted({f.kind for f in faults}):
        table[kind] = stats([v for f in faults if f.kind == kind and (v := value(f)) is not None])
    table["all"] = stats([v for f in faults if (v := value(f)) is not None])
    return table


# The must-be-0 counts among the lost records.
LOST_KEYS = ("health_checks_lost", "events_lost", "pipelines_lost", "pipelines_left_running",
             "pipelines_without_stages")  # fmt: skip


def timeline(
    events: Sequence[dict[str, Any]],
    unstored: Sequence[dict[str, Any]],
    records: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The stored events, plus those only the log has: events the store missed, and
    supervision events logged directly while the bus was down."""
    extra = [*unstored]
    extra += [
        r
        for r in records
        if r.get("logger") == "gaia.daemon" and str(r.get("event", "")).startswith("supervisor.")
    ]
    merged = [*events]
    merged += [{**r, "name": r.get("event"), "env": r.get("env", ""), "ts_": r["t"]} for r in extra]
    merged.sort(key=lambda e: e["ts_"])
    return merged


def render(report: Report) -> str:
    lines = [
        f"chaos soak: seed {report.seed}, {report.duration:g}s of faults",
        "faults injected: "
        + (", ".join(f"{k} {v}" for k, v in sorted(report.faults.items())) or "none")
        + f" (total {sum(report.faults.values())})",
        f"recoveries: {report.recoveries}/{sum(report.faults.values())}"
        + (f" ({report.cleared_at_end} cleared at the end)" if report.cleared_at_end else ""),
    ]
    for label, table in (("time to detect", report.detect), ("time to recover", report.recover)):
        lines.append(f"{label} (s):")
        for kind, s in table.items():
            if s:
                lines.append(
                    f"  {kind:<14} n={s['n']:<3} median {s['median']:.3f}  p95 {s['p95']:.3f}"
                    f"  max {s['max']:.3f}"
                )
    d = report.daemon
    lines += [
        f"stuck actors: {len(report.stuck_actors)} {report.stuck_actors or ''}".rstrip(),
        f"environments unhealthy at the end: {len(report.unhealthy_envs)} "
        f"{report.unhealthy_envs or ''}".rstrip(),
        f"lost records: {report.lost_total} " + json.dumps(report.lost_records, sort_keys=True),
        f"marker rows lost: {report.data.get('rows_lost', 0)} "
        + json.dumps(report.data, sort_keys=True),
        f"ladder steps taken: {report.ladder_steps}",
        f"incidents (failover agent): {json.dumps(report.incidents, sort_keys=True)}",
        f"daemon RSS MiB start {_mib(d['start'])} end {_mib(d['end'])} peak {_mib(d['peak'])}; "
        f"threads start {d['start'].get('threads')} end {d['end'].get('threads')} "
        f"peak {d['peak'].get('threads')}; open files start {d['start'].get('fds')} "
        f"end {d['end'].get('fds')} peak {d['peak'].get('fds')}",
        "daemon RSS MiB / threads / open files by minute of the storm: "
        + " ".join(
            f"{m['rss'] / 2**20:.0f}/{m['threads']}/{m.get('fds', '?')}"
            for m in d.get("each_minute", [])
        ),
        f"resource leaks: {report.leaks or 'none'}",
        f"daemon exit code after SIGTERM: {report.daemon_exit}",
    ]
    if report.unrecovered:
        lines.append(f"faults without an observed recovery: {report.unrecovered}")
    if report.fault_problems:
        lines.append(f"fault checks that failed: {report.fault_problems}")
    if report.harness_errors:
        lines.append(f"harness errors: {report.harness_errors[:10]}")
    lines.append("result: " + ("PASS" if report.ok else "FAIL"))
    return "\n".join(lines)


def _mib(values: Mapping[str, int]) -> str:
    rss = values.get("rss")
    return "?" if rss is None else f"{rss / 2**20:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of faults")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to recover after")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temp state directory")
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="KIND:TARGET",
        help="never inject this fault (repeatable), e.g. hang_actor:store",
    )
    args = parser.parse_args(argv)
    options = SoakOptions(
        args.seed, args.duration, args.settle, keep=args.keep, exclude=tuple(args.exclude)
    )
    try:
        report = run_soak(options, log=lambda line: print(line, flush=True))
    except RuntimeError as exc:
        print(f"chaos soak: {exc}", file=sys.stderr)
        return EXIT_NOT_UP
    print(json.dumps(asdict(report), indent=2) if args.json else render(report))
    return EXIT_OK if report.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

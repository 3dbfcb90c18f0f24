"""The chaos soak's data faults and the one invariant they are checked against.

Faults (each on a running, healthy environment; see chaos_soak.py for the pacing):

- ``port_squatter``: the service is SIGKILLed and another program takes its port at once,
  for a few seconds: the environment must wait, blocked, and start again by itself on the
  same data once the port is free;
- ``corrupt_db``: the service is paused, its database overwritten with garbage, then
  SIGKILLed: the ladder must restore the newest verified backup, keeping the garbage;
- ``deleted_db``: the database (and its -wal, -shm) deleted under the running service: with
  ``restore_on_data_loss`` the newest verified backup comes back, and the deleted file, still
  open in the service, is copied into the kept replaced data first.

Before each data fault a marker row is written through the service's API. The invariant,
checked after the soak: no marker is lost unless a backup restore was the only way back,
and then the replaced data is kept (an ``alert.data_replaced`` for that environment after
the marker, naming a ``saved_copy`` that exists).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SQUAT_SECONDS = 3.0
DATABASE = "app.db"  # the demo service's database
# Binds the port as soon as it is free (after "go" on stdin), then holds it until stdin ends.
SQUATTER = """
import socket, sys, time
port = int(sys.argv[1])
sys.stdin.readline()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
deadline = time.monotonic() + 2.0
while True:
    try:
        s.bind(("127.0.0.1", port))
        break
    except OSError:
        if time.monotonic() > deadline:
            print("lost", flush=True)
            sys.exit(1)
        time.sleep(0.001)
s.listen()
print("bound", flush=True)
sys.stdin.read()
"""


@dataclass(frozen=True)
class Marker:
    env: str
    name: str
    at: float


@dataclass
class Squat:
    env: str
    proc: subprocess.Popen[str]
    until: float


class DataFaults:
    """Injects the data faults into one daemon's environments and checks the invariant."""

    def __init__(self, env_dirs: Mapping[str, Path], ports: Mapping[str, int]) -> None:
        self.env_dirs = dict(env_dirs)
        self.ports = dict(ports)
        self.markers: list[Marker] = []
        self.squats: list[Squat] = []
        self.count = 0

    def mark(self, env: str) -> bool:
        """Write one marker row through the service; False when it did not take it."""
        self.count += 1
        name = f"chaos-marker-{self.count}"
        body = json.dumps({"name": name, "value": self.count})
        conn = http.client.HTTPConnection("127.0.0.1", self.ports[env], timeout=2.0)
        try:
            conn.request("POST", "/items", body, {"Content-Type": "application/json"})
            ok = conn.getresponse().status == 201
        except (OSError, http.client.HTTPException):
            ok = False
        finally:
            conn.close()
        if ok:
            self.markers.append(Marker(env, name, time.time()))
        return ok

    # Faults

    def port_squatter(self, env: str, pid: int) -> str:
        """Kill ``pid`` and take its port; "" when squatting, else why not."""
        proc = subprocess.Popen(
            [sys.executable, "-c", SQUATTER, str(self.ports[env])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            _end(proc)
            return "the service had already exited"
        proc.stdin.write("go\n")
        proc.stdin.flush()
        if proc.stdout.readline().strip() != "bound":
            _end(proc)
            return "the environment took its port back first"
        self.squats.append(Squat(env, proc, time.time() + SQUAT_SECONDS))
        return ""

    def release(self, everything: bool = False) -> None:
        """End the squats whose time is up (all of them with ``everything``)."""
        now = time.time()
        for squat in list(self.squats):
            if everything or now >= squat.until:
                _end(squat.proc)
                self.squats.remove(squat)

    def corrupt_db(self, env: str, pid: int) -> str:
        data = self.env_dirs[env] / "data"
        try:
            os.kill(pid, signal.SIGSTOP)  # nothing is written between the damage and the kill
        except ProcessLookupError:
            return "the service had already exited"
        try:
            for side in ("-wal", "-shm"):
                (data / f"{DATABASE}{side}").unlink(missing_ok=True)
            (data / DATABASE).write_bytes(b"chaos soak: not a database\n" * 512)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return ""

    def deleted_db(self, env: str) -> str:
        data = self.env_dirs[env] / "data"
        if not (data / DATABASE).exists():
            return "no database to delete"
        for name in (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm"):
            (data / name).unlink(missing_ok=True)
        return ""

    # The invariant

    def check(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Every marker is in its environment's live data, or a restore after it kept the
        replaced data (counted apart, with whether the marker is readable in the kept copy)."""
        replaced = [e for e in events if e.get("name") == "alert.data_replaced"]
        result: dict[str, Any] = {"markers": len(self.markers), "rows_lost": 0, "lost": []}
        result.update({"in_live_data": 0, "replaced_and_kept": 0, "readable_in_kept_copy": 0})
        live = {env: _names(d / "data" / DATABASE) for env, d in self.env_dirs.items()}
        for marker in self.markers:
            if marker.name in live.get(marker.env, set()):
                result["in_live_data"] += 1
                continue
            copies = [
                Path(str(e.get("saved_copy")))
                for e in replaced
                if e.get("env") == marker.env and e["ts_"] >= marker.at and e.get("saved_copy")
            ]
            kept = [c for c in copies if c.is_dir()]
            if not kept:
                result["rows_lost"] += 1
                result["lost"].append(f"{marker.env}: {marker.name}")
                continue
            result["replaced_and_kept"] += 1
            if any(marker.name in _names(c / DATABASE) for c in kept):
                result["readable_in_kept_copy"] += 1
        result["data_replaced_alerts"] = len(replaced)
        return result


def _names(db: Path) -> set[str]:
    """The item names in one of the demo's databases (empty when it cannot be read)."""
    if not db.is_file():
        return set()
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5.0)) as conn:
            return {str(row[0]) for row in conn.execute("SELECT name FROM items")}
    except sqlite3.Error:
        return set()


def _end(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(5)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()

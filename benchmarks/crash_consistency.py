"""Crash consistency: SIGKILL the daemon mid-promotion and mid-backup.

    python benchmarks/crash_consistency.py [--points 20] [--seed N] [--stages] [--quick] [--json]

One daemon state directory (the shipped config with free ports and short intervals, as in
chaos_soak.py) is used for every point. Each point starts an operation over the control
socket, ``promote all`` (the shipped stages: build, unit tests, quality, deploys, health,
integration tests, load, backup) or ``backup prod`` (of a database grown to ~30 MB so a
backup takes a while), waits a delay drawn from the seed within the operation's measured
duration, SIGKILLs the daemon (its services live on in their own process groups, as after
a real crash), starts a new daemon on the same state and checks:

- ``up``: the new daemon comes up with every environment healthy;
- ``release``: every environment serves a complete release: ``/health`` 200 whose
  ``release`` is the one ``current`` points at, and that release has its RELEASE.json;
- ``current``: ``current`` is a symlink to a complete release, no ``current.tmp`` left;
- ``store``: ``PRAGMA integrity_check`` of the store is ``ok``;
- ``pipeline``: every promotion the killed daemon left ``running`` is now ``interrupted``,
  none is ``running``, and its recovery (rolling a half-deployed target back) settles and
  does not fail;
- ``backups``: every backup directory with a manifest verifies (sha256 and integrity) and
  every ``backups`` row recorded as verified whose directory still exists verifies (rows of
  pruned backups are counted);
- ``processes``: exactly one service process per environment, no stage process left over;
- ``resolved``: staging and prod each run the release they ran before the point, or one a
  promotion of this point confirmed (succeeded): a promotion interrupted after its deploy is
  rolled back at the next start, never left on a release that did not pass every stage.

``--stages`` adds the interrupted-promotion points: one per stage of ``promote all``, each
killing the daemon as soon as that stage is recorded running.

It prints each point and ``passed n/N``; the exit status is 0 only when all pass.
``--quick`` uses trivial stages (build, deploy; backup, deploy) and a small database, for
the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.chaos_soak import (  # noqa: E402 - needs the sys.path entry above
    Harness,
    running_daemon,
    soak_config,
    wait_for,
)
from gaia_actors.console.client import Client  # noqa: E402
from gaia_actors.environments import backups  # noqa: E402
from gaia_actors.errors import ControlError  # noqa: E402

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_UP = 2
UP_TIMEOUT = 120.0  # seconds for a restarted daemon to have every environment healthy
RECOVERY_TIMEOUT = 120.0  # seconds for interrupted promotions to settle
OPERATION_TIMEOUT = 900.0
BIG_DB_ROWS = 150_000  # ~30 MB of items in prod, so a backup takes a while
ROW_NAME = "x" * 190

QUICK_PIPELINE = {
    "dev_to_staging": [{"kind": "build"}, {"kind": "deploy"}],
    "staging_to_prod": [
        {"kind": "backup"},
        {"kind": "deploy"},
        {"kind": "health", "name": "prod-health", "soak": 1.0},
    ],
}
TARGETS = ("staging", "prod")  # where promotions deploy (dev takes every build)
STAGE_POLL = 0.01  # seconds between looks for the stage a stage point waits for


@dataclass
class Point:
    index: int
    scenario: str  # promote-all | backup | stage <promotion>:<position> <name> <when>
    delay: float  # seconds from the request to the SIGKILL
    running_at_kill: list[int] = field(default_factory=list)  # pipelines left running
    stage_at_kill: str = ""
    problems: dict[str, str] = field(default_factory=dict)  # check -> what is wrong
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems


def crash_config(quick: bool) -> dict[str, Any]:
    config = soak_config(backup_every=60.0)
    config["environments"]["prod"]["backup_keep"] = 3  # big backups: keep the disk small
    if quick:
        config["pipeline"] = {**config.get("pipeline", {}), **QUICK_PIPELINE}
    return config


# --------------------------------------------------------------------------- operations


class Operation:
    """A command run on its own control connection in a thread, so the daemon can be killed
    under it."""

    def __init__(self, harness: Harness, name: str, args: dict[str, Any]) -> None:
        self.harness = harness
        self.name = name
        self.args = args
        self.result: Any = None
        self.error = ""
        self.progress: list[str] = []
        self.thread = threading.Thread(target=self._run, name=f"op-{name}", daemon=True)

    def start(self) -> float:
        started = time.monotonic()
        self.thread.start()
        return started

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _run(self) -> None:
        def progress(update: Any) -> None:
            if isinstance(update, dict):
                self.progress.append(str(update.get("message", update)))

        try:
            with Client.connect(self.harness.socket_path, timeout=5.0) as client:
                client.sock.settimeout(OPERATION_TIMEOUT)
                self.result = client.command(self.name, self.args, progress)
        except (ControlError, OSError) as exc:
            self.error = str(exc)


def run_to_end(harness: Harness, name: str, args: dict[str, Any]) -> float:
    """Run a command to its end; its duration (for the kill delays)."""
    op = Operation(harness, name, args)
    started = op.start()
    if not op.join(OPERATION_TIMEOUT):
        raise RuntimeError(f"{name} did not end within {OPERATION_TIMEOUT:g}s")
    if op.error:
        raise RuntimeError(f"{name} failed: {op.error}")
    return time.monotonic() - started


def grow_database(harness: Harness, env: str, rows: int) -> int:
    """Add ``rows`` items to ``env``'s database beside the running service (WAL allows it)."""
    path = harness.env_dir(env) / "data" / "app.db"
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        conn.execute("PRAGMA busy_timeout = 30000")
        with conn:
            conn.executemany(
                "INSERT INTO items (name, value, created_at) VALUES (?, ?, ?)",
                ((ROW_NAME, i, "2026-01-01T00:00:00Z") for i in range(rows)),
            )
    return path.stat().st_size


# --------------------------------------------------------------------------- checks


def read_rows(db_path: Path, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    # Not read-only: after a SIGKILL mid-write the store has a hot journal, which the first
    # reader must roll back (a read-only connection is refused).
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.execute("PRAGMA busy_timeout = 10000")
        return conn.execute(query, args).fetchall()


def check_release(h: Harness, env: str) -> str:
    current = h.env_dir(env) / "current"
    if not current.is_symlink():
        return f"{env}: current is not a symlink"
    target = current.resolve()
    if not target.is_dir() or target.parent != (h.env_dir(env) / "releases").resolve():
        return f"{env}: current points at {os.readlink(current)!r}, not a release"
    if not (target / "RELEASE.json").is_file():
        return f"{env}: release {target.name} has no RELEASE.json (incomplete)"
    if (h.env_dir(env) / "current.tmp").exists():
        return f"{env}: current.tmp left behind"
    served = h.health_body(env).get("release")
    if served != target.name:
        return f"{env}: serves release {served!r}, current is {target.name!r}"
    return ""


def check_store(h: Harness) -> str:
    rows = read_rows(h.db_path, "PRAGMA integrity_check")
    said = [str(r[0]) for r in rows]
    return "" if said == ["ok"] else f"integrity_check: {'; '.join(said[:5])}"


def check_pipelines(h: Harness, left_running: Sequence[int]) -> tuple[str, dict[str, Any]]:
    """The promotions the killed daemon left running are interrupted, and their recovery
    settles (not ``pending``) without failing."""

    def settled() -> list[tuple[Any, ...]] | None:
        rows = read_rows(h.db_path, "SELECT id, status, recovery FROM pipelines")
        busy = [r for r in rows if r[1] == "running" or r[2] == "pending"]
        return None if busy else rows

    rows = wait_for(settled, RECOVERY_TIMEOUT, interval=0.5)
    if rows is None:
        rows = read_rows(h.db_path, "SELECT id, status, recovery FROM pipelines")
        busy = [r for r in rows if r[1] == "running" or r[2] == "pending"]
        return f"promotions still running or pending recovery: {busy}", {}
    by_id = {r[0]: r for r in rows}
    problems = []
    for pid in left_running:
        row = by_id.get(pid)
        if row is None:
            problems.append(f"#{pid} vanished")
        elif row[1] != "interrupted":
            problems.append(f"#{pid} is {row[1]!r}, not 'interrupted'")
        elif str(row[2]).startswith("failed"):
            problems.append(f"#{pid} recovery {row[2]!r}")
    recovery = {f"#{pid}": by_id[pid][2] for pid in left_running if pid in by_id}
    return "; ".join(problems), {"recovery": recovery}


def current_releases(h: Harness) -> dict[str, str]:
    return {env: os.path.basename(os.readlink(h.env_dir(env) / "current")) for env in TARGETS}


def check_resolved(h: Harness, before: dict[str, str], first_id: int) -> str:
    """Each target runs what it ran before, or a release a promotion of this point confirmed."""
    rows = read_rows(
        h.db_path,
        "SELECT target, release_id FROM pipelines WHERE id >= ? AND status = 'succeeded'",
        (first_id,),
    )
    confirmed = {(target, release) for target, release in rows}
    problems = []
    for env, release in current_releases(h).items():
        if release != before.get(env) and (env, release) not in confirmed:
            problems.append(
                f"{env} runs {release}, neither its release before ({before.get(env)}) "
                "nor one a finished promotion confirmed"
            )
    return "; ".join(problems)


def _next_pipeline_id(h: Harness) -> int:
    rows = read_rows(h.db_path, "SELECT COALESCE(MAX(id), 0) FROM pipelines")
    return int(rows[0][0]) + 1


@dataclass(frozen=True)
class StagePoint:
    kind: str  # the promotion: dev_to_staging | staging_to_prod
    position: int
    name: str
    when: str  # running: as soon as it starts | passed: as soon as it is done


def _stage_reached(h: Harness, first_id: int, stage: StagePoint) -> str:
    rows = read_rows(
        h.db_path,
        "SELECT s.name, s.status FROM stages s JOIN pipelines p ON p.id = s.pipeline_id "
        "WHERE p.id >= ? AND p.kind = ? AND s.position = ?",
        (first_id, stage.kind, stage.position),
    )
    if not rows or (stage.when == "passed" and rows[0][1] != "passed"):
        return ""
    return f"{rows[0][0]} {rows[0][1]} at the kill"


def promote_all_stages(config: dict[str, Any]) -> list[StagePoint]:
    """A kill point as every stage of ``promote all`` starts, and as each deploy is done
    (the promotion not yet finished: the case its recovery must roll back)."""
    points = []
    for kind in ("dev_to_staging", "staging_to_prod"):
        for position, stage in enumerate(config["pipeline"][kind], start=1):
            name = str(stage.get("name") or stage["kind"])
            points.append(StagePoint(kind, position, name, "running"))
            if stage["kind"] == "deploy":
                points.append(StagePoint(kind, position, name, "passed"))
    return points


def check_backups(h: Harness) -> tuple[str, dict[str, Any]]:
    problems = []
    dirs = incomplete = 0
    for env in h.envs:
        root = h.env_dir(env) / "backups"
        for path in sorted(root.iterdir()) if root.is_dir() else ():
            if not path.is_dir():
                continue
            dirs += 1
            if not (path / backups.MANIFEST).exists():
                incomplete += 1  # left by a kill mid-backup: never listed or used
                continue
            problem = backups.backup_problem(path)
            if problem is not None:
                problems.append(f"{env}/{path.name}: {problem}")
    pruned = 0
    for path, verified in read_rows(h.db_path, "SELECT path, verified FROM backups"):
        if not verified:
            continue
        if not Path(path).exists():
            pruned += 1
            continue
        problem = backups.backup_problem(Path(path))
        if problem is not None:
            problems.append(f"row says verified, but {path}: {problem}")
    notes = {"backup_dirs": dirs, "incomplete_dirs": incomplete, "verified_rows_pruned": pruned}
    return "; ".join(problems), notes


def check_processes(h: Harness) -> str:
    """One service per environment; nothing else running from the state directory."""
    state = os.path.realpath(h.state_dir) + os.sep
    found: dict[str, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == h.pid:
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except OSError:
            continue
        if cwd.startswith(state):
            parts = cwd[len(state) :].split(os.sep)
            env = parts[1] if len(parts) > 1 and parts[0] == "environments" else "other"
            found.setdefault(env, []).append(int(entry.name))
    problems = [f"{env}: {len(pids)} processes {pids}" for env, pids in found.items()
                if env == "other" or len(pids) != 1]  # fmt: skip
    problems += [f"{env}: no service process" for env in h.envs if env not in found]
    return "; ".join(problems)


# --------------------------------------------------------------------------- the run


@dataclass
class Calibration:
    promote_all: float
    backup: float
    db_bytes: int


class CrashConsistency:
    def __init__(self, h: Harness, seed: int, quick: bool, log: Callable[[str], None]) -> None:
        self.h = h
        self.rng = random.Random(seed)
        self.quick = quick
        self.log = log
        self.before: dict[str, str] = {}  # each target's release before the next point

    def calibrate(self) -> Calibration:
        self.up()
        rows = 2_000 if self.quick else BIG_DB_ROWS
        size = grow_database(self.h, "prod", rows)
        promote = run_to_end(self.h, "promote", {"what": "all"})
        backup = run_to_end(self.h, "backup", {"env": "prod"})
        self.before = current_releases(self.h)
        self.log(
            f"calibration: promote-all {promote:.1f}s, backup of prod ({size / 2**20:.1f} MiB) "
            f"{backup:.2f}s"
        )
        return Calibration(promote, backup, size)

    def up(self) -> None:
        if not self.h.alive():
            self.h.start()
        if not self.h.wait_up(UP_TIMEOUT):
            raise RuntimeError(f"the daemon did not come up: {self.h.tail()}")

    def stage_point(self, index: int, stage: StagePoint) -> Point:
        """Start ``promote all`` and kill the daemon once the stage is recorded running (or,
        if it came and went unseen, right after it), or recorded passed."""
        point = Point(index, f"stage {stage.kind}:{stage.position} {stage.name} {stage.when}", 0.0)
        first_id = _next_pipeline_id(self.h)
        op = Operation(self.h, "promote", {"what": "all"})
        started = op.start()
        seen = wait_for(lambda: _stage_reached(self.h, first_id, stage) or op.join(0),
                        OPERATION_TIMEOUT, interval=STAGE_POLL)  # fmt: skip
        point.delay = round(time.monotonic() - started, 3)
        self.h.kill()
        op.join(30)
        point.notes["stage"] = str(seen) if seen is not True else "ended before it was seen"
        self._after_kill(point, first_id)
        return point

    def point(self, index: int, cal: Calibration) -> Point:
        scenario = "promote-all" if self.rng.random() < 2 / 3 else "backup"
        span = cal.promote_all if scenario == "promote-all" else cal.backup
        delay = round(self.rng.uniform(0.05, span), 3)
        point = Point(index, scenario, delay)
        name, args = ("promote", {"what": "all"}) if scenario == "promote-all" else (
            "backup", {"env": "prod"})  # fmt: skip
        first_id = _next_pipeline_id(self.h)
        op = Operation(self.h, name, args)
        started = op.start()
        time.sleep(max(0.0, started + delay - time.monotonic()))  # the kill point itself
        self.h.kill()
        op.join(30)
        point.stage_at_kill = op.progress[-1] if op.progress else ""
        self._after_kill(point, first_id)
        return point

    def _after_kill(self, point: Point, first_id: int) -> None:
        running = read_rows(self.h.db_path, "SELECT id FROM pipelines WHERE status = 'running'")
        point.running_at_kill = [r[0] for r in running]
        self.restart_and_check(point)
        if problem := check_resolved(self.h, self.before, first_id):
            point.problems["resolved"] = problem
        self.before = current_releases(self.h)

    def restart_and_check(self, point: Point) -> None:
        self.h.start()
        try:
            up = self.h.wait_up(UP_TIMEOUT)
        except RuntimeError as exc:
            point.problems["up"] = str(exc)[-500:]
            return
        if not up:
            unhealthy = [env for env in self.h.envs if not self.h.healthy(env)]
            point.problems["up"] = f"not healthy within {UP_TIMEOUT:g}s: {unhealthy}"
        # The recovery of an interrupted promotion may switch a target back: what each
        # environment serves is compared with `current` once it has settled.
        problem, notes = check_pipelines(self.h, point.running_at_kill)
        point.notes.update(notes)
        if problem:
            point.problems["pipeline"] = problem
        wait_for(self.h.all_healthy, 30, interval=0.2)
        for env in self.h.envs:
            if problem := check_release(self.h, env):
                point.problems.setdefault("release", problem)
        if problem := check_store(self.h):
            point.problems["store"] = problem
        problem, notes = check_backups(self.h)
        point.notes.update(notes)
        if problem:
            point.problems["backups"] = problem
        # Recovery may restart a service (rollback): check processes once everything is calm.
        wait_for(self.h.all_healthy, 30, interval=0.2)
        if problem := check_processes(self.h):
            point.problems["processes"] = problem


def describe(point: Point) -> str:
    verdict = "ok" if point.passed else f"FAILED {point.problems}"
    where = (point.notes.get("stage") or point.stage_at_kill).strip()[:60] or "-"
    recovery = ", ".join(f"{k} {v}" for k, v in point.notes.get("recovery", {}).items())
    return (
        f"point {point.index:>2}: kill {point.delay:6.2f}s into {point.scenario:<11} "
        f"(last progress: {where}) interrupted: {recovery or '-'}; "
        f"incomplete backup dirs {point.notes.get('incomplete_dirs', 0)} -> {verdict}"
    )


def run(
    points: int,
    seed: int,
    quick: bool,
    log: Callable[[str], None] = print,
    stages: bool = False,
) -> list[Point]:
    """``points`` random kill points, then (``stages``) one at each stage of promote-all."""
    results = []
    config = crash_config(quick)
    with running_daemon(config) as h:
        crash = CrashConsistency(h, seed, quick, log)
        cal = crash.calibrate()
        for index in range(1, points + 1):
            results.append(crash.point(index, cal))
            log(describe(results[-1]))
        for stage in promote_all_stages(config) if stages else ():
            results.append(crash.stage_point(len(results) + 1, stage))
            log(describe(results[-1]))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stages", action="store_true", help="also kill at every stage")
    parser.add_argument("--quick", action="store_true", help="trivial stages, small database")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        results = run(
            args.points, args.seed, args.quick, lambda s: print(s, flush=True), args.stages
        )
    except RuntimeError as exc:
        print(f"crash consistency: {exc}", file=sys.stderr)
        return EXIT_NOT_UP
    passed = sum(p.passed for p in results)
    if args.json:
        print(json.dumps([{**asdict(p), "passed": p.passed} for p in results], indent=2))
    print(
        f"crash consistency: passed {passed}/{len(results)} "
        f"(seed {args.seed}, {time.monotonic() - started:.0f}s)"
    )
    return EXIT_OK if passed == len(results) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

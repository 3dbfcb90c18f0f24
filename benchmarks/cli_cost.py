"""CPU per command-line process and per daemon start: what one ``gaia-env`` command and one
start of the daemon cost, against a bare interpreter, one that imports Pykka and one that
imports the whole application.

    python benchmarks/cli_cost.py [--runs 8] [--starts 5]

On the shipped configuration (free ports, as in chaos_soak.py's ``local_config``), it starts
the daemon, then runs each command as a child process (``python run.py --config ... CMD``),
once to warm the bytecode cache and ``--runs`` times measured, and prints the mean CPU-s
(user + system, from the children's rusage) and wall time per child; then it stops the daemon
and runs the commands that work without one (or say that they need it, exit 3) the same way.
The daemon's start is measured ``--starts`` times on a fresh state directory and once more on
each one's existing state (no release to build), and the median printed: the daemon process's
own CPU-s (user + system, from /proc) and the wall time from its spawn until its control
socket answers and every environment's ``/health`` is 200 (its services and the release build
are processes of their own, not counted). The baselines run the same way in the same run: a
bare interpreter (``python -c pass``), ``python -c "import pykka"`` and one that imports the
whole application (``python -c "import gaia_actors.app"``, what the daemon imports). With
PYTHONDONTWRITEBYTECODE set, the children cache their bytecode under a temporary folder
instead (as the test suite does), so that what is measured is the import, not compiling it
again.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.chaos_soak import Harness, local_config, running_daemon  # noqa: E402

UP_TIMEOUT_S = 120.0
WHOLE_APP = "import gaia_actors.app"
BASELINES = ("pass", "import pykka", WHOLE_APP)
COMMANDS = ("actors", "status", "health prod", "history", "logs prod", "messages", "--help")
# Without a daemon: the commands that read the store or the files, and two that need the
# daemon and say so (exit 3): a deploy and the REPL.
OFFLINE = ("status", "history", "logs prod", "deploy prod 1", "repl")
EXIT_UNREACHABLE = 3


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def measure(
    argv: Sequence[str], env: dict[str, str], runs: int, expected: int = 0
) -> tuple[float, float]:
    """Mean (CPU-s, wall s) of ``runs`` children running ``argv``, after one warm-up."""
    run = functools.partial(
        subprocess.run, argv, cwd=REPO, env=env, capture_output=True, check=False
    )
    run(stdin=subprocess.DEVNULL)
    cpu, started = children_cpu(), time.monotonic()
    for _ in range(runs):
        done = run(stdin=subprocess.DEVNULL)
        if done.returncode != expected:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-300:]!r}")
    return (children_cpu() - cpu) / runs, (time.monotonic() - started) / runs


def process_cpu(pid: int) -> float:
    """A live process's own CPU-s so far (utime + stime, /proc/<pid>/stat fields 14-15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_cost(h: Harness) -> tuple[float, float]:
    """(CPU-s, wall s) of the daemon ``h`` from its spawn to ready; it is stopped after."""
    started = h.start()
    if not h.wait_up(UP_TIMEOUT_S):
        raise RuntimeError(f"the daemon did not answer within {UP_TIMEOUT_S:g}s: {h.tail()}")
    wall, cpu = time.monotonic() - started, process_cpu(h.pid)
    h.stop()
    return cpu, wall


def daemon_starts(starts: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Each start's cost on a fresh state directory, and again on the state it left."""
    fresh, existing = [], []
    for _ in range(starts):
        with running_daemon(local_config()) as h:
            fresh.append(start_cost(h))
            existing.append(start_cost(h))
    return fresh, existing


def median(values: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The median CPU-s and the median wall time (a start's cost swings with the load)."""
    return statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)


def row(label: str, cost: tuple[float, float], whole: float) -> str:
    return f"{label:<48} {cost[0]:6.3f} {cost[1]:7.3f} {cost[0] / whole:16.2f}"


def child_environment(h: Harness) -> dict[str, str]:
    env = {**os.environ, "GAIA_STATE_DIR": str(h.state_dir)}
    env.pop("GAIA_CONFIG", None)
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "gaia-bench-pycache")
    return env


def run(runs: int, starts: int) -> list[str]:
    python = sys.executable
    with running_daemon(local_config()) as h:
        h.start()
        if not h.wait_up(UP_TIMEOUT_S):
            raise RuntimeError(f"the daemon did not answer within {UP_TIMEOUT_S:g}s: {h.tail()}")
        env = child_environment(h)
        baselines = {code: measure([python, "-c", code], env, runs) for code in BASELINES}
        whole = baselines[WHOLE_APP][0]
        lines = [f"{'child process':<48} {'CPU-s':>6} {'wall s':>7} {'CPU / whole app':>16}"]
        lines += [row(f"python -c {code!r}", cost, whole) for code, cost in baselines.items()]
        for command in COMMANDS:
            argv = [python, "run.py", "--config", str(h.config_path), *command.split()]
            lines.append(row(f"run.py {command}", measure(argv, env, runs), whole))
        h.stop()
        for command in OFFLINE:
            argv = [python, "run.py", "--config", str(h.config_path), *command.split()]
            code = EXIT_UNREACHABLE if command.startswith(("deploy", "repl")) else 0
            cost = measure(argv, env, runs, expected=code)
            lines.append(row(f"run.py {command} (no daemon)", cost, whole))
    fresh, existing = daemon_starts(starts)
    lines.append(row("daemon start to ready, fresh state (median)", median(fresh), whole))
    lines.append(row("daemon start to ready, existing state (median)", median(existing), whole))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="measured children per command")
    parser.add_argument("--starts", type=int, default=5, help="daemon starts on fresh state")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    for line in run(args.runs, args.starts):
        print(line, flush=True)
    print(
        f"(mean of {args.runs} children each, {args.starts} daemon starts of each kind; "
        f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU per command-line process: what one ``gaia-env`` command costs, against importing the
whole application (what every command imported before each imported only its own).

    python benchmarks/cli_cost.py [--runs 8]

On the shipped configuration (free ports, as in chaos_soak.py's ``local_config``), it starts
the daemon, then runs each command as a child process (``python run.py --config ... CMD``),
once to warm the bytecode cache and ``--runs`` times measured, and prints the mean CPU-s
(user + system, from the children's rusage) and wall time per child. The baselines run the same
way in the same run: a bare interpreter (``python -c pass``) and one that imports the whole
application (``python -c "import gaia_actors.app"``). With PYTHONDONTWRITEBYTECODE set, the
children cache their bytecode under a temporary folder instead (as the test suite does), so
that what is measured is the import, not compiling it again.
"""

from __future__ import annotations

import argparse
import os
import resource
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
COMMANDS = ("actors", "status", "health prod", "history", "messages", "--help")


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def measure(argv: Sequence[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Mean (CPU-s, wall s) of ``runs`` children running ``argv``, after one warm-up."""
    subprocess.run(argv, cwd=REPO, env=env, capture_output=True, check=False)
    cpu, started = children_cpu(), time.monotonic()
    for _ in range(runs):
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-300:]!r}")
    return (children_cpu() - cpu) / runs, (time.monotonic() - started) / runs


def child_environment(h: Harness) -> dict[str, str]:
    env = {**os.environ, "GAIA_STATE_DIR": str(h.state_dir)}
    env.pop("GAIA_CONFIG", None)
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "gaia-bench-pycache")
    return env


def run(runs: int) -> list[str]:
    with running_daemon(local_config()) as h:
        h.start()
        if not h.wait_up(UP_TIMEOUT_S):
            raise RuntimeError(f"the daemon did not answer within {UP_TIMEOUT_S:g}s: {h.tail()}")
        env = child_environment(h)
        python = sys.executable
        bare = measure([python, "-c", "pass"], env, runs)
        whole = measure([python, "-c", WHOLE_APP], env, runs)
        lines = [
            f"{'child process':<36} {'CPU-s':>6} {'wall s':>7} {'CPU / whole app':>16}",
            f"{'python -c pass':<36} {bare[0]:6.3f} {bare[1]:7.3f} {bare[0] / whole[0]:16.2f}",
            f"{'python -c ' + repr(WHOLE_APP):<36} {whole[0]:6.3f} {whole[1]:7.3f} {1.0:16.2f}",
        ]
        for command in COMMANDS:
            argv = [python, "run.py", "--config", str(h.config_path), *command.split()]
            cpu, wall = measure(argv, env, runs)
            lines.append(f"{'run.py ' + command:<36} {cpu:6.3f} {wall:7.3f} {cpu / whole[0]:16.2f}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="measured children per command")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    for line in run(args.runs):
        print(line, flush=True)
    print(f"(mean of {args.runs} children each; load average {load:.1f} at the start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

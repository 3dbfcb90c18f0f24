"""A whole improvement cycle on a real PyPI project, next to its plain test suite.

    python benchmarks/improve_cycle.py [--project cachetools|idna|inflection] [--repeat N]

Fetches the project's pinned sdist (as the tests do, cached under ~/.cache/gaia-test-targets),
then, alternately and ``--repeat`` times (default 3):

- ``python -m pytest -q -p no:cacheprovider`` in a copy of it (plain: no coverage, no JUnit);
- one cycle on that copy through the real actors (store, bus, engine, workers; as
  ``improve --target`` does without a daemon), reading every phase's time from the store.

and, between the two, what the cycle's test phase runs, on its own (the suite under coverage
with JUnit XML, then coverage's JSON report, read). It prints the median of each phase and the
test phase's wall and CPU time (its child processes') against the plain suite's, as ratios
(goal: at most 1.5). On a loaded machine the CPU ratio is the steadier figure. Inner pytest
runs load no plugins in either case (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1), and a src layout gets
``src`` on PYTHONPATH in both.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaia_actors.app import build_children, start_root
from gaia_actors.improve import history, tree
from gaia_actors.improve.discover import src_layout
from gaia_actors.improve.status import PHASES
from gaia_actors.improve.testing import PythonTestOptions, RunStatus, run_python_tests
from gaia_actors.messages import RunCycle
from gaia_actors.settings import Settings, load
from supervisors import Registry
from tests.gaia_actors.improve.realprojects import PINNED, fetch_sdist

ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
CONFIG = """\
[logging]
console = "off"

[improve]
target = "{target}"
linters = ["ruff"]
test_env = {{ PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }}
"""


def test_env(target: Path) -> dict[str, str]:
    env = dict(ENV)
    if src_layout(target):
        inherited = os.environ.get("PYTHONPATH", "")
        env["PYTHONPATH"] = os.pathsep.join(p for p in ("src", inherited) if p)
    return env


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def plain_suite(target: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``python -m pytest`` in ``target``, as a developer runs it."""
    cpu, started = children_cpu(), time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=target,
        env={**os.environ, **test_env(target)},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started, children_cpu() - cpu


def test_phase(target: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of what the cycle's test phase runs: the suite under coverage with
    JUnit XML, then coverage's report, read into per-file and per-function numbers."""
    cpu, started = children_cpu(), time.perf_counter()
    run = run_python_tests(target, 600, PythonTestOptions(env=test_env(target)))
    if run.status is not RunStatus.PASSED:
        raise RuntimeError(f"the suite under coverage did not pass: {run.reason}")
    return time.perf_counter() - started, children_cpu() - cpu


def one_cycle(target: Path, work: Path) -> dict[str, Any]:
    """A cycle on ``target`` with its own state directory; its stored result."""
    work.mkdir(parents=True)
    config = work / "gaia.toml"
    config.write_text(CONFIG.format(target=target), encoding="utf-8")
    settings: Settings = load(config, environ={"GAIA_STATE_DIR": str(work / "state")})
    registry = Registry()
    children = build_children(settings, registry, capabilities=(tree,))
    root = start_root(settings, registry, children=children)
    try:
        answer = registry.ask("improve", RunCycle(str(target)), timeout=30)
        cycle_id = int(answer["cycle_id"])
        deadline = time.monotonic() + 600
        while history.get(cycle_id).status == "running":  # the store is the cycle's record
            if time.monotonic() > deadline:
                raise TimeoutError(f"cycle {cycle_id} still running after 600 s")
            time.sleep(0.1)
        return history.show(cycle_id)
    finally:
        root.stop(block=True, timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--project", choices=sorted(PINNED), default="cachetools")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    source = fetch_sdist(args.project)
    plain: list[tuple[float, float]] = []
    phase: list[tuple[float, float]] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gaia-bench-") as tmp:
        for index in range(args.repeat):
            target = Path(tmp) / f"{args.project}-{index}"
            shutil.copytree(source, target)
            plain.append(plain_suite(target))
            phase.append(test_phase(target))
            results.append(one_cycle(target, Path(tmp) / f"run-{index}"))
    report(args.project, plain, phase, results)
    return 0


def report(
    project: str,
    plain: list[tuple[float, float]],
    phase: list[tuple[float, float]],
    results: list[dict[str, Any]],
) -> None:
    last = results[-1]
    tests = last["tests"]
    print(
        f"{project}=={PINNED[project]}: {tests['tests']} tests, {tests['passed']} passed, "
        f"coverage {last['coverage']:.1f}%, {last['detect']['findings']} findings, "
        f"fixes: {last['fixes']['status']} ({len(results)} rounds, medians; load "
        f"{os.getloadavg()[0]:.1f})"
    )
    for phase_name in PHASES:
        times = [r["phases"].get(phase_name, 0.0) for r in results]
        print(f"  {'cycle: ' + phase_name:<30} {statistics.median(times):7.3f} s")
    wall, cpu = (statistics.median(x) for x in zip(*plain, strict=True))
    test_wall, test_cpu = (statistics.median(x) for x in zip(*phase, strict=True))
    print(f"  {'plain python -m pytest':<30} {wall:7.3f} s wall {cpu:7.3f} s CPU")
    print(f"  {'the test phase, on its own':<30} {test_wall:7.3f} s wall {test_cpu:7.3f} s CPU")
    print(
        f"test phase / plain suite: {test_wall / wall:.2f}x wall, {test_cpu / cpu:.2f}x CPU "
        "(goal <= 1.5x)"
    )


if __name__ == "__main__":
    sys.exit(main())

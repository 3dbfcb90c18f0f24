"""A whole improvement cycle on a real PyPI project, next to its plain test suite.

    python benchmarks/improve_cycle.py [--project cachetools|idna|inflection] [--repeat N]

Fetches the project's pinned sdist (as the tests do, cached under ~/.cache/gaia-test-targets),
then, alternately and ``--repeat`` times (default 3):

- ``python -m pytest -q -p no:cacheprovider`` in a copy of it (plain: no coverage, no JUnit);
- one cycle on that copy through the real actors (store, bus, engine, workers; as
  ``improve --target`` does without a daemon), reading every phase's time from the store.

It prints the median of each phase, the test phase's two parts (the suite under coverage with
JUnit XML, then coverage's JSON report), and the ratio of the test phase to the plain suite
(goal: at most 1.5). Inner pytest runs load no plugins in either case
(PYTEST_DISABLE_PLUGIN_AUTOLOAD=1), and a src layout gets ``src`` on PYTHONPATH in both.
"""

from __future__ import annotations

import argparse
import os
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
from gaia_actors.improve import history
from gaia_actors.improve.cycle import PHASES
from gaia_actors.improve.discover import src_layout
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


def plain_suite(target: Path) -> float:
    """Seconds for ``python -m pytest`` in ``target``, as a developer runs it."""
    env = {**os.environ, **ENV}
    if src_layout(target):
        env["PYTHONPATH"] = os.pathsep.join(p for p in ("src", env.get("PYTHONPATH", "")) if p)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=target,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def one_cycle(target: Path, work: Path) -> dict[str, Any]:
    """A cycle on ``target`` with its own state directory; its stored result."""
    work.mkdir(parents=True)
    config = work / "gaia.toml"
    config.write_text(CONFIG.format(target=target), encoding="utf-8")
    settings: Settings = load(config, environ={"GAIA_STATE_DIR": str(work / "state")})
    registry = Registry()
    children = build_children(settings, registry, capabilities=("gaia_actors.improve.tree",))
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
    plain: list[float] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gaia-bench-") as tmp:
        for index in range(args.repeat):
            target = Path(tmp) / f"{args.project}-{index}"
            shutil.copytree(source, target)
            plain.append(plain_suite(target))
            results.append(one_cycle(target, Path(tmp) / f"run-{index}"))
    report(args.project, plain, results)
    return 0


def report(project: str, plain: list[float], results: list[dict[str, Any]]) -> None:
    last = results[-1]
    tests = last["tests"]
    print(
        f"{project}=={PINNED[project]}: {tests['tests']} tests, {tests['passed']} passed, "
        f"coverage {last['coverage']:.1f}%, {last['detect']['findings']} findings, "
        f"fixes: {last['fixes']['status']} ({len(results)} cycles, medians)"
    )
    print(f"  {'plain python -m pytest':<28} {statistics.median(plain):7.3f} s")
    for phase in PHASES:
        times = [r["phases"].get(phase, 0.0) for r in results]
        print(f"  {'cycle: ' + phase:<28} {statistics.median(times):7.3f} s")
    suite = statistics.median(r["tests"]["seconds"] for r in results)
    phase = statistics.median(r["phases"]["test"] for r in results)
    print(f"  {'  of which: suite under coverage':<28} {suite:7.3f} s (pytest + JUnit)")
    print(f"  {'  of which: coverage report':<28} {phase - suite:7.3f} s (and the rest)")
    ratio = phase / statistics.median(plain)
    print(f"test phase / plain suite: {ratio:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    sys.exit(main())

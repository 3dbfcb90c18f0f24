"""The target's build command and its benchmark.

``run_benchmark`` accepts, on stdout or stderr, the last of either a line ``ops/sec: 12345.6``
(also ``ops_per_sec``, ``:`` or ``=``, any case, ``_`` or ``,`` digit separators, exponents
allowed), a line holding a JSON object with a numeric ``"ops_per_sec"``, or a ``go test
-bench`` result line (``BenchmarkAdd-2  1000000  312.5 ns/op``: 1e9 / ns per op).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from gaia_actors.improve.commands import run_command, which
from gaia_actors.improve.errors import BenchmarkError, CommandError
from gaia_actors.improve.testing import RunStatus
from supervisors.records import record


@record
class BuildRun:
    """A build command's outcome and duration (``SKIPPED`` when its executable is missing)."""

    status: RunStatus
    seconds: float = 0.0
    output_tail: str = ""
    reason: str = ""


def run_build(argv: Sequence[str], cwd: str | Path, timeout: float) -> BuildRun:
    """Run the target's build command and time it."""
    if not argv or which(argv[0]) is None:
        return BuildRun(
            RunStatus.SKIPPED, reason=f"{argv[0] if argv else '(no command)'} not found"
        )
    try:
        result = run_command(argv, cwd, timeout=timeout)
    except CommandError as exc:
        return BuildRun(RunStatus.ERROR, reason=str(exc))
    if result.timed_out:
        return BuildRun(
            RunStatus.TIMED_OUT, result.seconds, result.tail(), f"timed out after {timeout}s"
        )
    status = RunStatus.PASSED if result.ok else RunStatus.FAILED
    return BuildRun(status, result.seconds, result.tail())


@record
class BenchmarkResult:
    ops_per_sec: float
    seconds: float
    command: tuple[str, ...]


_OPS_LINE = re.compile(
    r"\bops(?:/|_per_)sec\s*[:=]\s*([0-9][0-9_,]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)", re.I
)
_GO_BENCH_LINE = re.compile(r"^Benchmark\S*\s+\d+\s+([0-9]+(?:\.[0-9]+)?) ns/op\b")


def parse_ops_per_sec(output: str) -> float | None:
    """The last ops/sec figure in ``output`` (formats in the module docstring), or None."""
    found: float | None = None
    for line in output.splitlines():
        value = _json_ops(line) if line.lstrip().startswith("{") else None
        if value is None and (match := _OPS_LINE.search(line)):
            value = float(match.group(1).replace("_", "").replace(",", ""))
        if value is None and (match := _GO_BENCH_LINE.match(line)) and float(match.group(1)):
            value = 1e9 / float(match.group(1))
        if value is not None:
            found = value
    return found


def _json_ops(line: str) -> float | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    value = data.get("ops_per_sec") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def run_benchmark(argv: Sequence[str], cwd: str | Path, timeout: float) -> BenchmarkResult:
    """Run the benchmark and return its ops/sec; ``BenchmarkError`` if it fails or says none."""
    try:
        result = run_command(argv, cwd, timeout=timeout)
    except CommandError as exc:
        raise BenchmarkError(argv, str(exc)) from exc
    if result.timed_out:
        raise BenchmarkError(argv, f"timed out after {timeout}s", result.tail())
    if result.returncode != 0:
        raise BenchmarkError(argv, f"exit code {result.returncode}", result.tail())
    ops = parse_ops_per_sec(result.stdout + "\n" + result.stderr)
    if ops is None:
        raise BenchmarkError(
            argv, "no 'ops/sec: N' line or {\"ops_per_sec\": N} in its output", result.tail()
        )
    return BenchmarkResult(ops, result.seconds, result.argv)

"""The target's build and its benchmark, run for real and read."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gaia_actors.improve.benchmark import parse_ops_per_sec, run_benchmark, run_build
from gaia_actors.improve.errors import BenchmarkError
from gaia_actors.improve.testing import RunStatus


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("warming up\nops/sec: 12345.6\n", 12345.6),
        ("OPS_PER_SEC = 1_000\n", 1000.0),
        ("ops/sec: 1,234,567\n", 1234567.0),
        ('{"ops_per_sec": 2.5e3, "runs": 3}\n', 2500.0),
        ("ops/sec: 1\nops/sec: 2\n", 2.0),  # the last figure wins
        ('{"ops_per_sec": true}\n', None),
        ("nothing here\n", None),
        ("BenchmarkAdd-2   \t 2000000\t       250.0 ns/op\nPASS\n", 4e6),  # go test -bench
        ("BenchmarkIdle-2  1  0 ns/op\n", None),
    ],
)
def test_ops_per_sec_formats(output: str, expected: float | None) -> None:
    assert parse_ops_per_sec(output) == expected


def test_run_benchmark_reads_ops_from_a_real_command(tmp_path: Path) -> None:
    result = run_benchmark([sys.executable, "-c", "print('ops/sec: 4200.5')"], tmp_path, timeout=30)
    assert result.ops_per_sec == 4200.5
    with pytest.raises(BenchmarkError, match="no 'ops/sec"):
        run_benchmark([sys.executable, "-c", "print('hi')"], tmp_path, timeout=30)
    with pytest.raises(BenchmarkError, match="exit code 3"):
        run_benchmark([sys.executable, "-c", "raise SystemExit(3)"], tmp_path, timeout=30)


def test_build_is_timed_and_a_missing_tool_is_skipped(tmp_path: Path) -> None:
    built = run_build([sys.executable, "-c", "pass"], tmp_path, timeout=30)
    assert built.status is RunStatus.PASSED
    assert built.seconds > 0
    missing = run_build(["no-such-build-tool-xyz"], tmp_path, timeout=30)
    assert missing.status is RunStatus.SKIPPED

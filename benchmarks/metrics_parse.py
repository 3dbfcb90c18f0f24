"""Parsing a scraped /metrics body: CPU and peak memory, ours against the previous parser.

    python benchmarks/metrics_parse.py [--mb 4]

For a body of ``--mb`` MiB of valid Prometheus text (one series per line, ~40 bytes each)
and one of malformed lines, it parses each with:

- before: the parser the collector used until it streamed (kept below, verbatim in spirit):
  prometheus-client's parser over the whole text, and when that gives up on a bad line, again
  line by line, one parser call per line;
- ours: `gaia_actors.monitoring.metrics.parse_exposition` with the default limits (10,000
  samples, 0.5 s of CPU per body).

A third body is the valid one with a single bad line at its end: the worst case before, which
parsed the whole body, failed at the end, then parsed it again one line at a time.

CPU is this thread's `time.thread_time()` over one parse; peak memory is tracemalloc's peak
during a second, traced parse (Python allocations, not RSS). The ratios are ours / before, in
the same run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gaia_actors.monitoring.metrics import Limits, parse_exposition

MIB = 1024 * 1024


def parse_before(text: str, limits: Limits) -> int:
    """The previous parse: the samples it kept (counts only; same bounds)."""
    try:
        families = list(text_string_to_metric_families(text))
    except Exception:  # as the old parser: any error falls back to one line at a time
        return _lines_before(text, limits)
    return _keep_before((s for f in families for s in f.samples), limits.max_samples)


def _lines_before(text: str, limits: Limits) -> int:
    kept = 0
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        try:
            families = list(text_string_to_metric_families(line + "\n"))
        except Exception:  # counted as a parse error there
            continue
        room = limits.max_samples - kept
        kept += _keep_before((s for f in families for s in f.samples), room)
    return kept


def _keep_before(samples: Iterable[Any], room: int) -> int:
    kept = 0
    for sample in samples:
        labels = tuple(sorted((str(k), str(v)) for k, v in sample.labels.items()))
        if labels is not None and math.isfinite(float(sample.value)) and kept < room:
            kept += 1
    return kept


def body_of(line: bytes, size: int) -> bytes:
    """``line`` % (i, i) for i = 0, 1, ... until ``size`` bytes."""
    lines, total, i = [], 0, 0
    while total < size:
        lines.append(line % (i, i))
        total += len(lines[-1])
        i += 1
    return b"".join(lines)


VALID_LINE = b'app_series{i="%d",path="/items"} %d\n'
MALFORMED_LINE = b'app_series{i="%d" this line is not a sample at all %d\n'


def measure(parse: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds, peak MiB) of a call: timed untraced, then traced for the peak (tracing
    slows the parse down, and a slower parse reaches the CPU budget sooner)."""
    started = time.thread_time()
    parse()
    cpu = time.thread_time() - started
    tracemalloc.start()
    parse()
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return cpu, peak / MIB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=4.0, help="body size in MiB")
    args = parser.parse_args(argv)
    limits = Limits()
    size = int(args.mb * MIB)
    print(f"{'body':<24} {'before CPU':>11} {'ours CPU':>9} {'ratio':>6}   "
          f"{'before peak':>12} {'ours peak':>10} {'ratio':>6}   ours dropped")  # fmt: skip
    valid = body_of(VALID_LINE, size)
    bodies = (
        ("valid", valid),
        ("malformed", body_of(MALFORMED_LINE, size)),
        ("valid, one bad line", valid + b"app_broken{\n"),
    )
    for name, body in bodies:
        text = body.decode()
        before_cpu, before_peak = measure(lambda text=text: parse_before(text, limits))
        report = parse_exposition(body, limits)
        ours_cpu, ours_peak = measure(lambda body=body: parse_exposition(body, limits))
        dropped = (
            f"{len(report.samples)} kept, {report.parse_errors} malformed, "
            f"{report.truncated} past the sample limit, {report.over_budget} past the CPU budget"
        )
        print(
            f"{name + f' {len(body) / MIB:.0f} MiB':<24} {before_cpu:>10.2f}s {ours_cpu:>8.2f}s "
            f"{ours_cpu / before_cpu:>6.3f}   {before_peak:>9.1f} MiB {ours_peak:>6.1f} MiB "
            f"{ours_peak / before_peak:>6.3f}   {dropped}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Parsing a scraped /metrics body: CPU and peak memory, ours against the previous parser.

    python benchmarks/metrics_parse.py [--mb 4]

For a body of ``--mb`` MiB of valid Prometheus text (one series per line, ~40 bytes each)
and one of malformed lines, it parses each with:

- before: the parser the collector used until it streamed (kept below, verbatim in spirit):
  prometheus-client's parser over the whole text, and when that gives up on a bad line, again
  line by line, one parser call per line;
- ours: `gaia_actors.monitoring.exposition.parse_exposition` with the default limits (10,000
  samples, 0.5 s of CPU per body).

A third body is the valid one with a single bad line at its end: the worst case before, which
parsed the whole body, failed at the end, then parsed it again one line at a time.

CPU is this thread's `time.thread_time()` over one parse; peak memory is tracemalloc's peak
during a second, traced parse (Python allocations); peak RSS is the resident high-water mark
of a fresh child process (this script with ``--child``) that builds the one body and parses it
once (the same body building in both, so the difference is the parse's). The ratios are
ours / before, in the same run.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gaia_actors.monitoring.exposition import Limits, parse_exposition

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


BODIES: dict[str, Callable[[int], bytes]] = {
    "valid": lambda size: body_of(VALID_LINE, size),
    "malformed": lambda size: body_of(MALFORMED_LINE, size),
    "valid, one bad line": lambda size: body_of(VALID_LINE, size) + b"app_broken{\n",
}


def child(parser: str, name: str, size: int) -> int:
    """Build one body, parse it with one parser; print the peak RSS (MiB)."""
    body = BODIES[name](size)
    if parser == "before":
        parse_before(body.decode(), Limits())
    else:
        parse_exposition(body, Limits())
    # VmHWM, not ru_maxrss: the latter survives exec, so a child would report its parent's.
    status = Path("/proc/self/status").read_text()
    hwm_kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    print(int(hwm_kib) / 1024)
    return 0


def peak_rss(parser: str, name: str, mb: float) -> float:
    argv = [sys.executable, __file__, "--mb", str(mb), "--child", parser, name]
    return float(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=4.0, help="body size in MiB")
    parser.add_argument("--child", nargs=2, metavar=("PARSER", "BODY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = int(args.mb * MIB)
    if args.child:
        return child(args.child[0], args.child[1], size)
    limits = Limits()
    print(f"{'body':<24} {'CPU before':>10} {'ours':>6} {'ratio':>6}   "
          f"{'py peak before':>14} {'ours':>9}   {'peak RSS before':>17} {'ours':>9}"
          "   ours dropped")  # fmt: skip
    for name, make in BODIES.items():
        body = make(size)
        text = body.decode()
        before_cpu, before_peak = measure(lambda text=text: parse_before(text, limits))
        report = parse_exposition(body, limits)
        ours_cpu, ours_peak = measure(lambda body=body: parse_exposition(body, limits))
        before_rss, ours_rss = (
            peak_rss("before", name, args.mb),
            peak_rss("ours", name, args.mb),
        )
        dropped = (
            f"{len(report.samples)} kept, {report.parse_errors} malformed, "
            f"{report.truncated} past the sample limit, {report.over_budget} past the CPU budget"
        )
        print(
            f"{name + f' {len(body) / MIB:.0f} MiB':<24} {before_cpu:>9.2f}s {ours_cpu:>5.2f}s "
            f"{ours_cpu / before_cpu:>6.3f}   {before_peak:>10.1f} MiB {ours_peak:>5.1f} MiB   "
            f"{before_rss:>13.1f} MiB {ours_rss:>5.1f} MiB   {dropped}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

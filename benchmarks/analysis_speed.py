"""Comment-marker analysis vs grep over the running interpreter's standard library.

    python benchmarks/analysis_speed.py [--root DIR] [--workers N] [--repeat N] [--full]

Times, in one run and on the same tree:

- ``grep -rnE 'TODO|FIXME' --include='*.py' <root>`` (one subprocess), and
- ``markerscan.scan``, the code of ``python run.py markers`` (markers TODO and FIXME, like the
  grep pattern): the tree walk handing batches of files, as it finds them, to the
  comment-markers-only analysis in ``--workers`` processes (default: the CPU count, at most 4;
  see gaia_actors/improve/markerscan.py). The time includes the walk, starting the helpers,
  and collecting every result.

To compare like with like, the walk here excludes nothing (no .gitignore, no always-skipped
names: the standard library has a ``venv`` package), as ``grep -r`` does; our analysis still
skips binary, undecodable (neither UTF-8 nor valid in their PEP 263 declared encoding) and huge
(> 2 MiB) files, and says how many.

It prints files/s and MB/s for both (grep's bytes are the sizes of the ``*.py`` files it
searched), the throughput ratios ours / grep (goals: >= 1.0x wall-clock, >= 0.5x per
CPU-second), both counts, and then, outside the timed part:

- exactness: the same files analysed again with comments from the standard ``tokenize``
  module (the full analysis' marker detector), and every finding of the timed scan compared with
  the tokenizer's (line, type, scope and text): the differences are counted and listed;
- the difference from grep: every grep hit is classified with ``tokenize`` as a comment, a
  string or docstring, an identifier, or a file we do not analyse, and our findings are checked
  line by line against the hits that tokenize calls comments.
One untimed grep run first warms the page cache for both; with ``--repeat N`` (default 3)
each timing is the best of N runs, taken alternately.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import resource
import subprocess
import sys
import sysconfig
import time
import tokenize
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaia_actors.improve.analysis import analyse_batch
from gaia_actors.improve.files import SkippedFile, WalkOptions, iter_walk, walk
from gaia_actors.improve.markerscan import BATCH_FILES, ScanResult, scan
from gaia_actors.improve.sources import AnalysisSettings

MARKERS = ("TODO", "FIXME")
GREP_PATTERN = "TODO|FIXME"
SIZED = WalkOptions(suffixes=(".py",), use_gitignore=False, always_skip=frozenset())
WALK = replace(SIZED, sizes=False)  # the timed walk: the read checks sizes
# The reference: the full analysis' marker detector (comments from tokenize), nothing else.
REFERENCE = AnalysisSettings(
    markers=MARKERS, detectors=frozenset({"markers"}), collect_imports=False, tokenize_comments=True
)


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float  # user + system seconds of every process involved
    files: int
    bytes: int
    count: int

    def line(self, name: str) -> str:
        mb = self.bytes / 1e6
        return (
            f"{name:<5} wall {self.wall:6.3f} s  cpu {self.cpu:6.3f} s  {self.files:6d} files  "
            f"{mb:6.1f} MB  {self.files / self.wall:7.0f} files/s  {mb / self.wall:6.1f} MB/s  "
            f"({mb / self.cpu:6.1f} MB per cpu-s)  count {self.count}"
        )


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def time_grep(root: Path) -> tuple[float, float, list[str]]:
    argv = ["grep", "-rnE", GREP_PATTERN, "--include=*.py", str(root)]
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    wall = time.perf_counter() - started
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    if done.returncode not in (0, 1):
        raise SystemExit(f"grep failed ({done.returncode}): {done.stderr.decode()[:500]}")
    return wall, cpu, done.stdout.decode("utf-8", "surrogateescape").splitlines()


def time_ours(root: Path, workers: int) -> tuple[float, float, ScanResult]:
    """``markerscan.scan``, the ``markers`` command's code: walk + helpers' start + analysis
    + collection; CPU of this process and of the helpers (counted once joined)."""
    cpu = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = scan(root, MARKERS, workers, WALK)
    wall = time.perf_counter() - started
    cpu = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    return wall, cpu, result


# --- explaining the difference (not timed) --------------------------------------------

_ANY_MARKER = re.compile(GREP_PATTERN)
_WHOLE_MARKER = re.compile(r"\b(?:TODO|FIXME)\b")


def classify_file(path: str, lines: Sequence[int]) -> list[tuple[int, str]]:
    """For each grep-hit line of ``path``: where its first marker is, per ``tokenize``."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        return [(line, "file skipped by us (non-UTF-8)") for line in lines]
    if "\0" in text[:8192]:
        return [(line, "file skipped by us (binary)") for line in lines]
    where = _token_kinds(text, set(lines))
    return [(line, where.get(line, "unclassified (tokenize stopped early)")) for line in lines]


# When a line holds markers in several places, the comment decides (that is what we report).
_PRIORITY = (
    "comment",
    "comment, marker not a whole word (e.g. TODOs)",
    "string or docstring",
    "identifier",
    "other token",
)


def _token_kinds(text: str, wanted: set[int]) -> dict[int, str]:
    found: dict[int, set[str]] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            for line in range(tok.start[0], tok.end[0] + 1):
                kind = _kind_on_line(tok, line) if line in wanted else ""
                if kind:
                    found.setdefault(line, set()).add(kind)
    except (tokenize.TokenError, SyntaxError):
        pass  # the lines after the error stay unclassified
    return {line: min(kinds, key=_PRIORITY.index) for line, kinds in found.items()}


def _kind_on_line(tok: tokenize.TokenInfo, line: int) -> str:
    segment = tok.string.split("\n")[line - tok.start[0]] if "\n" in tok.string else tok.string
    if not _ANY_MARKER.search(segment):
        return ""
    if tok.type == tokenize.COMMENT:
        return _PRIORITY[0] if _WHOLE_MARKER.search(segment) else _PRIORITY[1]
    if tok.type == tokenize.STRING:
        return _PRIORITY[2]
    return _PRIORITY[3] if tok.type == tokenize.NAME else _PRIORITY[4]


def classify_hits(hits: Sequence[str], workers: int) -> dict[tuple[str, int], str]:
    by_file: dict[str, list[int]] = {}
    for hit in hits:
        path, line, _ = hit.split(":", 2)
        by_file.setdefault(path, []).append(int(line))
    paths = sorted(by_file)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        classified = pool.map(classify_file, paths, [by_file[p] for p in paths], chunksize=16)
        return {
            (p, line): kind
            for p, kinds in zip(paths, classified, strict=True)
            for line, kind in kinds
        }


def explain(hits: Sequence[str], result: ScanResult, root: Path, workers: int) -> None:
    kinds = classify_hits(hits, workers)
    print(f"\nwhere grep's {len(hits)} matching lines are, per tokenize (a comment wins a tie):")
    for kind, count in Counter(kinds.values()).most_common():
        print(f"  {count:6d}  {kind}")
    comment_lines = {key for key, kind in kinds.items() if kind == "comment"}
    ours = [(str(root / f.path), f.line) for f in result.findings]
    our_lines = set(ours)
    print(
        f"\nour {len(ours)} findings are on {len(our_lines)} lines "
        f"({len(ours) - len(our_lines)} lines hold both TODO and FIXME: one finding each)"
    )
    missed = comment_lines - our_lines
    extra = our_lines - set(kinds)
    print(f"  grep comment lines (whole-word marker) we did not report: {len(missed)}")
    print(f"  lines we reported that grep did not match:                {len(extra)}")
    for path, line in sorted(missed)[:5]:
        print(f"    missed {path}:{line}")
    others = our_lines & set(kinds) - comment_lines
    for path, line in sorted(others)[:5]:
        print(f"    reported but tokenize says {kinds[(path, line)]!r}: {path}:{line}")


def _met(ratio: float, goal: float) -> str:
    return "met" if ratio >= goal else "NOT met"


Row = tuple[str, int, str, str, str]


def findings_of(paths: Sequence[str], root: Path, settings: AnalysisSettings) -> list[Row]:
    """Every finding of ``analyse_batch`` as plain values: (path, line, type, scope, text)."""
    results = analyse_batch(paths, root, settings)
    return [(f.file, f.line, f.type, f.scope, f.text) for r in results for f in r.findings]


def compare_with_tokenize(result: ScanResult, root: Path, workers: int) -> None:
    """The timed scan's findings against the tokenizer's on every file of the tree (untimed)."""
    paths = [item[0] for item in iter_walk(root, WALK) if not isinstance(item, SkippedFile)]
    chunks = [paths[i : i + BATCH_FILES] for i in range(0, len(paths), BATCH_FILES)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        batches = pool.map(findings_of, chunks, [root] * len(chunks), [REFERENCE] * len(chunks))
        reference = {finding for batch in batches for finding in batch}
    fast = {(f.path, f.line, f.marker.lower(), f.scope, f.text) for f in result.findings}
    differences = sorted(fast ^ reference)
    print(
        f"exactness: the scan {len(fast)} findings, tokenize {len(reference)}, "
        f"differences {len(differences)} (line, type, scope and text compared)"
    )
    for difference in differences[:5]:
        side = "scan only" if difference in fast else "tokenize only"
        print(f"  {side}: {difference}")


def skipped_summary(result: ScanResult) -> str:
    counts = result.skipped_by_reason()
    return ", ".join(f"{n} {reason}" for reason, n in counts.items()) or "none"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    parser.add_argument("--no-explain", action="store_true", help="skip the tokenize breakdown")
    args = parser.parse_args(argv)
    root = args.root.resolve()

    tree = walk(root, SIZED)  # sizes of the *.py files, for grep's MB/s (not timed)
    time_grep(root)  # warm the page cache, so neither side pays for the first read
    grep_runs = []
    our_runs = []
    for _ in range(max(1, args.repeat)):
        grep_runs.append(time_grep(root))
        our_runs.append(time_ours(root, args.workers))
    grep_wall, grep_cpu, hits = min(grep_runs, key=lambda run: run[0])
    our_wall, our_cpu, result = min(our_runs, key=lambda run: run[0])

    grep = Timing(grep_wall, grep_cpu, len(tree.files), tree.total_bytes, len(hits))
    ours = Timing(our_wall, our_cpu, result.files, result.bytes, len(result.findings))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"tree: {root}  ({len(tree.files)} *.py files, {tree.total_bytes / 1e6:.1f} MB)")
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (other work skews wall times)")
    print(
        f"ours: comment markers only ({', '.join(MARKERS)}), {args.workers} processes "
        f"(this one, after its walk, and {args.workers - 1} forked), "
        f"batches of {BATCH_FILES} files; skipped by us: {skipped_summary(result)}"
    )
    print(f"best of {max(1, args.repeat)} runs each, page cache warm:")
    print(grep.line("grep"))
    print(ours.line("ours"))
    ratio = (ours.bytes / ours.wall) / (grep.bytes / grep.wall)
    cpu_ratio = (ours.bytes / ours.cpu) / (grep.bytes / grep.cpu)
    print(
        f"throughput ratio ours/grep: wall-clock {ratio:.2f}x (goal >= 1.0x: {_met(ratio, 1.0)}), "
        f"per cpu-second {cpu_ratio:.2f}x (goal >= 0.5x: {_met(cpu_ratio, 0.5)})"
    )
    print(f"counts: grep {grep.count} matching lines, ours {ours.count} findings in comments")
    compare_with_tokenize(result, root, args.workers)
    if not args.no_explain:
        explain(hits, result, root, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

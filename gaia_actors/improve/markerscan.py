"""The comment-marker scan of a tree: every TODO, FIXME (or other marker) in a comment, found
exactly as ``tokenize`` would find it, faster than grep on a tree of Python files.

``scan(root, markers, workers)`` walks ``root`` (``iter_walk``, no stat per file: the read
skips huge files) and hands batches of ``BATCH_FILES`` files, as the walk finds them, to
``tally_batch`` in the comment-markers-only mode (a file without any marker is only counted) in
``workers`` processes: ``workers - 1`` forked helpers, each sent batches down a pipe while the
walk goes on, and this process, which analyses the batches not sent yet once its walk is over
(on 2 cores, a third process would only compete for them). The ``markers`` command runs it, and
``benchmarks/analysis_speed.py`` times it against grep.

Helpers are forked (cheap: the analysis is already imported); ``scan`` with one worker forks
nothing, which is what a multithreaded process (the daemon) runs.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from gaia_actors.improve.analysis import tally_batch
from gaia_actors.improve.files import SkippedFile, WalkOptions, iter_walk
from gaia_actors.improve.sources import AnalysisSettings
from supervisors.records import record

BATCH_FILES = 200
# No stat per candidate: the read skips files past the size limit.
DEFAULT_WALK = WalkOptions(sizes=False)


@dataclass(frozen=True, slots=True, order=True)
class MarkerFinding:
    """One marker in one comment line (``path`` relative to the root, posix)."""

    path: str
    line: int
    marker: str
    scope: str  # the enclosing function or class ("" at module level)
    text: str  # the comment, stripped


@record
class Outcome:
    """One batch's ``tally_batch``, boiled down to plain values: pickling ``FileResult``
    objects back from a helper costs more than making them."""

    files: int
    bytes: int
    findings: tuple[MarkerFinding, ...]
    skipped: tuple[SkippedFile, ...]


@record
class ScanResult:
    """What a scan found (sorted by path and line), the files and bytes it analysed, and the
    files it skipped (on the walk, or as binary, undecodable, huge or unreadable)."""

    root: str
    markers: tuple[str, ...]
    findings: tuple[MarkerFinding, ...]
    files: int
    bytes: int
    skipped: tuple[SkippedFile, ...] = field(default=())

    def skipped_by_reason(self) -> dict[str, int]:
        counts = Counter(str(s.reason) for s in self.skipped)
        return dict(counts.most_common())


def scan(
    root: str | Path,
    markers: Sequence[str],
    workers: int,
    options: WalkOptions = DEFAULT_WALK,
) -> ScanResult:
    """Every comment marker under ``root``, analysed in ``workers`` processes (at least 1);
    a file past ``options.max_bytes`` is skipped as huge."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    top = Path(root)
    settings = AnalysisSettings(
        markers=tuple(markers), markers_only=True, max_bytes=options.max_bytes
    )
    helpers = Helpers(top, settings, workers - 1)
    walk_skipped: list[SkippedFile] = []
    batch: list[str] = []
    try:
        for item in iter_walk(top, options):
            if isinstance(item, SkippedFile):
                walk_skipped.append(item)
                continue
            batch.append(item[0])
            if len(batch) == BATCH_FILES:
                helpers.give(batch)
                batch = []
        helpers.give(batch)
    except BaseException:  # a walk that fails (or Ctrl-C) leaves no helper behind
        helpers.stop()
        raise
    return _combined(str(top), settings.markers, helpers.finish(), walk_skipped)


def _combined(
    root: str, markers: tuple[str, ...], outcomes: list[Outcome], skipped: list[SkippedFile]
) -> ScanResult:
    findings = sorted(f for o in outcomes for f in o.findings)
    every_skip = sorted([*skipped, *(s for o in outcomes for s in o.skipped)], key=_path_of)
    files = sum(o.files for o in outcomes)
    size = sum(o.bytes for o in outcomes)
    return ScanResult(root, markers, tuple(findings), files, size, tuple(every_skip))


def _path_of(skipped: SkippedFile) -> str:
    return skipped.path


def analyse(paths: Sequence[str], root: Path, settings: AnalysisSettings) -> Outcome:
    """``tally_batch`` (a file without a marker is only counted), reduced to plain values."""
    tally = tally_batch(paths, root, settings)
    spelled = {m.lower(): m for m in settings.markers}  # a finding's type is its marker, lower
    findings = tuple(
        MarkerFinding(f.file, f.line, spelled.get(f.type, f.type), f.scope, f.text)
        for r in tally.results
        for f in r.findings
    )
    skipped = tuple(r.skipped for r in tally.results if r.skipped is not None)
    return Outcome(tally.files, tally.bytes, findings, skipped)


def serve(conn: Connection, root: Path, settings: AnalysisSettings) -> None:
    """A helper process: the outcome of each batch received, sent back, until None."""
    while (batch := conn.recv()) is not None:
        conn.send(analyse(batch, root, settings))


@dataclass
class Helper:
    """A forked process analysing the batches sent down its pipe."""

    conn: Connection
    process: BaseProcess
    given: int = 0  # batches sent and not answered yet


class Helpers:
    """Batches shared between helper processes and this one: each helper is kept ``QUEUED``
    batches ahead (one running, one waiting, so it never waits for this process to send the
    next), and this process analyses the rest once it is free. One pipe per helper and no
    threads here: on 2 cores, this process and one helper keep both busy, and nothing else
    competes for them."""

    QUEUED = 2

    def __init__(self, root: Path, settings: AnalysisSettings, count: int) -> None:
        self._root = root
        self._settings = settings
        self._waiting: deque[list[str]] = deque()
        self._results: list[Outcome] = []
        self._helpers: list[Helper] = []
        try:
            for _ in range(count):
                self._helpers.append(self._start())
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Helper:
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=serve, args=(theirs, self._root, self._settings), daemon=True
        )
        process.start()
        theirs.close()  # a helper that dies is then an EOFError here, not a hang
        return Helper(ours, process)

    def give(self, batch: list[str]) -> None:
        if batch:
            self._waiting.append(batch)
        self._top_up()

    def finish(self) -> list[Outcome]:
        """Analyse here whatever no helper has been given, then collect the helpers'."""
        try:
            while self._waiting:
                self._results.append(analyse(self._waiting.pop(), self._root, self._settings))
                self._top_up()
            for helper in self._helpers:
                for _ in range(helper.given):
                    self._results.append(helper.conn.recv())
                helper.given = 0
                helper.conn.send(None)
                helper.process.join()
        finally:
            self.stop()
        return self._results

    def stop(self) -> None:
        """End every helper still running (after an error or an interrupt: none is left)."""
        for helper in self._helpers:
            helper.conn.close()
            if helper.process.is_alive():
                helper.process.terminate()
            helper.process.join()

    def _top_up(self) -> None:
        for helper in self._helpers:
            while helper.given and helper.conn.poll():
                self._results.append(helper.conn.recv())
                helper.given -= 1
            while self._waiting and helper.given < self.QUEUED:
                helper.conn.send(self._waiting.popleft())
                helper.given += 1

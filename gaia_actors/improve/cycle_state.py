"""What a cycle knows: the analysis it was handed, each later phase's results, where its rows go.

``CycleState`` holds the results; the phases that fill them are ``Cycle``'s (cycle.py) and the
report stored from them ``CycleReport``'s (cycle_report.py).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gaia_actors.improve.discover import src_layout
from gaia_actors.improve.findings import Finding
from supervisors.records import record

if TYPE_CHECKING:
    from gaia_actors.improve.analysis import FileResult
    from gaia_actors.improve.benchmark import BuildRun
    from gaia_actors.improve.compare import Comparison
    from gaia_actors.improve.delivery import TreeState
    from gaia_actors.improve.files import SkippedFile
    from gaia_actors.improve.graph import ImportGraph
    from gaia_actors.improve.linters import LinterSpec, LintResult
    from gaia_actors.improve.plan import CyclePlan
    from gaia_actors.improve.style import StyleTool
    from gaia_actors.improve.tasks import Task
    from gaia_actors.improve.testing import TestRun

# The cycle's machinery (analysis, tests, linters, fixes) is imported when a cycle runs: the
# daemon starts the engine without it.

TOP = 10  # examples kept in the stored report


@record
class AnalysisOutcome:
    """Phase 1's result: one FileResult per candidate file, sorted by path."""

    results: tuple[FileResult, ...]
    walk_skipped: tuple[SkippedFile, ...]
    seconds: float
    batches: int = 0
    requeued: int = 0
    workers: int = 0

    @property
    def analysed(self) -> tuple[FileResult, ...]:
        return tuple(r for r in self.results if r.skipped is None)

    @property
    def skipped(self) -> tuple[SkippedFile, ...]:
        from_workers = tuple(r.skipped for r in self.results if r.skipped is not None)
        return tuple(sorted((*self.walk_skipped, *from_workers), key=lambda s: s.path))

    def summary(self) -> dict[str, Any]:
        analysed = self.analysed
        skipped = Counter(str(s.reason) for s in self.skipped)
        kinds = Counter(f.type for r in analysed for f in r.findings)
        return {
            "files": len(analysed),
            "lines": sum(r.lines for r in analysed),
            "bytes": sum(r.bytes for r in analysed),
            "batches": self.batches,
            "requeued": self.requeued,
            "workers": self.workers,
            "skipped": dict(skipped),
            "skipped_examples": [
                {"path": s.path, "reason": str(s.reason), "detail": s.detail}
                for s in self.skipped[:TOP]
            ],
            "findings_by_type": dict(kinds),
        }


class Recorder(Protocol):
    """Where a cycle's rows go (the Store actor, by messages)."""

    def insert(self, table: str, **values: Any) -> None: ...

    def update(self, table: str, row_id: int, **values: Any) -> None: ...

    def flush(self) -> None: ...


@record
class PreviousCycle:
    """What the last finished cycle of the same target measured and found."""

    cycle_id: int
    metrics: Mapping[str, float | None]
    findings: tuple[Finding, ...]


@dataclass
class CycleState:
    """One cycle's results from ``detect`` on; ``Cycle`` fills them phase by phase."""

    plan: CyclePlan
    analysis: AnalysisOutcome
    recorder: Recorder
    previous: PreviousCycle | None = None
    previous_ops: tuple[int, float] | None = None  # (cycle id, ops/sec) of the last figure
    started: float = field(default_factory=time.time)
    findings: tuple[Finding, ...] = ()
    lint: LintResult | None = None
    lint_specs: tuple[LinterSpec, ...] = ()
    tools: tuple[StyleTool, ...] = ()
    graph: ImportGraph | None = None
    build: BuildRun | None = None
    tests: TestRun | None = None
    test_kind: str = "none"
    test_reason: str = ""
    tasks: tuple[Task, ...] = ()
    fix: dict[str, Any] = field(default_factory=dict)
    bench: dict[str, Any] = field(default_factory=dict)
    comparison: Comparison | None = None
    tree: TreeState | None = None  # the tree as the cycle read it (for applying a fix)

    def _gaps(self, gaps: Sequence[Finding]) -> list[Finding]:
        """The coverage gaps outside ``coverage_omit`` (code no test is meant to run)."""
        from gaia_actors.improve.files import IgnoreFile

        omit = IgnoreFile.from_lines("", self.plan.settings.coverage_omit)
        return [g for g in gaps if omit.empty or not omit.covers(g.file)]

    def test_env(self) -> dict[str, str]:
        """The tests' environment: the configured one, with ``src`` first on PYTHONPATH for a
        src layout (relative, so it holds in the scratch copy the fixes are verified in)."""
        env = dict(self.plan.settings.test_env)
        src = src_layout(self.plan.target) if self.test_kind == "pytest" else ""
        if src:
            inherited = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
            env["PYTHONPATH"] = os.pathsep.join(p for p in (src, inherited) if p)
        return env

    def metrics(self) -> dict[str, float | None]:
        from gaia_actors.improve.testing import RunStatus

        run = self.tests
        fixed = self.fix.get("issues_fixed", 0)
        return {
            "coverage": run.coverage.percent if run and run.coverage else None,
            "pass_rate": run.pass_rate if run else None,
            "ops_per_sec": self.bench.get("ops_per_sec"),
            "issues_detected": float(len(self.findings)),
            "issues_fixed": float(fixed),
            "build_seconds": self.build.seconds if self.build is not None else None,
            "test_seconds": run.seconds if run and run.status is not RunStatus.SKIPPED else None,
            "analysis_seconds": self.analysis.seconds,
        }

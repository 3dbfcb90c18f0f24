"""The phases of an improvement cycle after the analysis, as plain steps over plain values.

A cycle has seven phases, each timed and logged by the engine::

    analyse                the engine walks the tree and its workers analyse the files (engine.py)
    detect                 linters joined in, the import graph (cycles, fan-in), findings combined
    test                   build, then tests under coverage: pass rate, coverage, coverage gaps
    generate_tasks         findings grouped into ranked tasks (rule-based; tasks.py)
    execute_improvements   mechanical fixers in a scratch copy, kept only if verified; --apply
    verify                 the benchmark's ops/sec against the previous cycle's
    persist                metrics, findings and tasks to the store; comparison with the last cycle

``Cycle`` runs phases 2-7 over the results its ``CycleState`` holds (cycle_state.py); one thread
(the engine's cycle thread) calls its steps in order, and each returns a small summary for the
phase's event. The report stored at the end is ``CycleReport``'s (cycle_report.py).

What applies where is the plan's (plan.py); how tests are found, discover.py's; which fixes
are tried and kept, improvements.py's.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gaia_actors.improve.benchmark import run_benchmark, run_build
from gaia_actors.improve.commands import run_command
from gaia_actors.improve.compare import (
    AlertThresholds,
    CycleSnapshot,
    alert_reasons,
    compare_cycles,
    is_regression,
)
from gaia_actors.improve.cycle_report import CycleReport, task_row
from gaia_actors.improve.delivery import Delivery, TreeState
from gaia_actors.improve.errors import BenchmarkError, CommandError, PatchError
from gaia_actors.improve.findings import sort_key
from gaia_actors.improve.fixes import FixOutcome
from gaia_actors.improve.gotests import run_go_tests
from gaia_actors.improve.graph import build_graph, cycle_findings
from gaia_actors.improve.improvements import FixPhase, check_specs, fix_tools
from gaia_actors.improve.linters import (
    GO_VET,
    RUFF,
    LinterSpec,
    run_linters,
    without_duplicates,
)
from gaia_actors.improve.patches import Patch
from gaia_actors.improve.plan import test_kind
from gaia_actors.improve.status import PHASES
from gaia_actors.improve.tasks import build_tasks, git_churn
from gaia_actors.improve.testing import PythonTestOptions, RunStatus, TestRun, run_python_tests

__all__ = ["PHASES", "Cycle"]

KNOWN_LINTERS: dict[str, LinterSpec] = {"ruff": RUFF, "go vet": GO_VET}


# --- the cycle --------------------------------------------------------------------------


class Cycle(CycleReport):
    """One cycle's phases 2-7. Used by one thread; ``steps`` lists them in order."""

    def steps(self) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
        return [
            ("detect", self.detect),
            ("test", self.test),
            ("generate_tasks", self.generate_tasks),
            ("execute_improvements", self.execute_improvements),
            ("verify", self.verify),
            ("persist", self.persist),
        ]

    # Phase 2: detect

    def detect(self) -> dict[str, Any]:
        """The workers' findings, the linters' and the import cycles, combined and sorted."""
        analysed = self.analysis.analysed
        found = [f for r in analysed for f in r.findings]
        linters = [KNOWN_LINTERS[n] for n in self.plan.settings.linters if n in KNOWN_LINTERS]
        specs = [
            LinterSpec(s.name, self.plan.command(s.argv), s.parser, s.ok_returncodes)
            for s in linters
        ]
        self.tools = fix_tools(self.plan)
        self.lint_specs = (*specs, *check_specs(self.plan, self.tools))
        self.lint = run_linters(self.plan.target, self.lint_specs, self.plan.settings.timeout)
        found.extend(without_duplicates(self.lint.findings, found))
        self.graph = build_graph({r.path: r.imports for r in analysed if r.language == "python"})
        found.extend(cycle_findings(self.graph))
        self.findings = tuple(sorted(found, key=sort_key))
        unknown = [n for n in self.plan.settings.linters if n not in KNOWN_LINTERS]
        return {
            "findings": len(self.findings),
            "lint_findings": len(self.lint.findings),
            "import_cycles": len(self.graph.cycles),
            "linters": ", ".join(f"{r.name}: {r.status}" for r in self.lint.runs) or "none",
            "unknown_linters": ", ".join(unknown),
        }

    # Phase 3: test

    def test(self) -> dict[str, Any]:
        """The build command (configured target only), then the tests under coverage."""
        settings = self.plan.settings
        if self.plan.configured and settings.build_command:
            with tempfile.TemporaryDirectory(prefix="gaia-build-") as tmp:
                argv = self.plan.command(settings.build_command, Path(tmp))
                self.build = run_build(argv, self.plan.target, settings.timeout)
        python_files = (r.path for r in self.analysis.analysed if r.language == "python")
        found = test_kind(self.plan, python_files)
        self.test_kind, self.test_reason = found.kind, found.reason
        self.tests = self._run_tests()
        gaps = self._gaps(self.tests.gaps)
        if gaps:
            self.findings = tuple(sorted((*self.findings, *gaps), key=sort_key))
        run = self.tests
        return {
            "kind": self.test_kind,
            "status": str(run.status),
            "pass_rate": run.pass_rate,
            "coverage": run.coverage.percent if run.coverage else None,
            "coverage_gaps": len(gaps),
            "test_seconds": round(run.seconds, 3),
        }

    def _run_tests(self) -> TestRun:
        settings, target = self.plan.settings, self.plan.target
        if self.test_kind == "pytest":
            only = frozenset(r.path for r in self.analysis.analysed if r.language == "python")
            options = PythonTestOptions(
                python=self.plan.python,
                pytest_args=settings.pytest_args,
                threshold=settings.coverage_threshold,
                only=only,
                env=self.test_env(),
            )
            return run_python_tests(target, settings.timeout, options)
        if self.test_kind == "go":
            go = self.plan.command(("go",))[0]
            return run_go_tests(
                target, settings.timeout, go=go, threshold=settings.coverage_threshold
            )
        if self.test_kind == "command":
            return self._run_test_command()
        return TestRun(RunStatus.SKIPPED, reason=self.test_reason)

    def _run_test_command(self) -> TestRun:
        argv = self.plan.command(self.plan.settings.test_command)
        env = dict(self.plan.settings.test_env)
        try:
            result = run_command(
                argv, self.plan.target, timeout=self.plan.settings.timeout, env=env
            )
        except CommandError as exc:
            return TestRun(RunStatus.ERROR, argv, reason=str(exc))
        if result.timed_out:
            status = RunStatus.TIMED_OUT
        else:
            status = RunStatus.PASSED if result.ok else RunStatus.FAILED
        return TestRun(
            status,
            argv,
            result.returncode,
            result.seconds,
            output_tail=result.tail(),
            reason="exit code decides; no per-test results or coverage",
        )

    # Phase 4: generate tasks

    def generate_tasks(self) -> dict[str, Any]:
        churn = git_churn(self.plan.target, self.plan.settings.churn_commits)
        fan_in = self.graph.fan_in if self.graph is not None else {}
        self.tasks = tuple(build_tasks(self.findings, fan_in=fan_in, churn=churn))
        top = self.tasks[0].title if self.tasks else ""
        return {"tasks": len(self.tasks), "churn_files": len(churn), "top": top}

    # Phase 5: execute improvements

    def execute_improvements(self) -> dict[str, Any]:
        phase = FixPhase(
            self.plan,
            self.findings,
            self.tests,
            self.test_kind,
            self.test_env(),
            self.lint_specs,
            self.tools,
        )
        self.fix, outcome = phase.run()
        if outcome is not None and outcome.patch is not None:
            self.fix |= self._deliver(outcome.patch, outcome)
        return {
            "status": self.fix["status"],
            "files": len(self.fix.get("files", [])),
            "applied": self.fix.get("applied", False),
            "branch": self.fix.get("branch"),
            "issues_fixed": self.fix.get("issues_fixed", 0),
            "reason": self.fix.get("reason", ""),
        }

    def _deliver(self, patch: Patch, outcome: FixOutcome) -> dict[str, Any]:
        """The patch file, and with ``apply`` a branch commit (git) or the patched tree."""
        delivery = Delivery(
            self.plan.cycle_id,
            self.plan.target,
            patch,
            self.tree or TreeState({}),
            fixed=self.fix.get("fixed", ()),
            tools=[run.name for run in outcome.fixers if run.status == "ran"],
            test_result=self._test_result(outcome),
            options=self.plan.walk_options,
        )
        report: dict[str, Any] = {}
        if self.plan.patch_dir is not None:
            report["patch_file"] = str(delivery.write_patch(self.plan.patch_dir))
        if not self.plan.apply:
            return report
        if self.tree is None:
            return report | {"apply_error": "the cycle has no record of the tree it read"}
        try:
            return report | delivery.apply() | {"applied": True}
        except PatchError as exc:
            return report | {"apply_error": f"{exc}; nothing was applied"}

    def _test_result(self, outcome: FixOutcome) -> str:
        run = self.tests
        if run is None:
            return ""
        before = f"{self.test_kind} {run.status}"
        if run.junit is not None:
            junit = run.junit
            before += f", {junit.passed} passed, {junit.failures} failed, {junit.errors} errors"
        after = outcome.tests.tail(300).strip().splitlines() if outcome.tests else []
        return f"{before} before the fix; with it: {after[-1] if after else 'passed'}"

    # Phase 6: verify

    def verify(self) -> dict[str, Any]:
        self.bench = self._benchmark()
        return {k: self.bench.get(k) for k in ("status", "ops_per_sec", "regression", "reason")}

    def _benchmark(self) -> dict[str, Any]:
        settings = self.plan.settings
        if not settings.benchmark_command:
            return {"status": "skipped", "reason": "no benchmark_command configured"}
        if not self.plan.configured:
            return {"status": "skipped", "reason": "the benchmark belongs to the configured target"}
        argv = self.plan.command(settings.benchmark_command)
        try:
            result = run_benchmark(argv, self.plan.target, settings.timeout)
        except BenchmarkError as exc:
            return {"status": "failed", "reason": str(exc), "output": exc.output_tail[-1500:]}
        report: dict[str, Any] = {
            "status": "ran",
            "ops_per_sec": result.ops_per_sec,
            "seconds": round(result.seconds, 3),
            "regression": False,
        }
        if self.previous_ops is not None:
            cycle_id, before = self.previous_ops
            report["previous"] = {"cycle_id": cycle_id, "ops_per_sec": before}
            report["change"] = (result.ops_per_sec - before) / before if before else None
            report["regression"] = is_regression(
                before, result.ops_per_sec, settings.regression_threshold
            )
        return report

    # Phase 7: persist

    def persist(self) -> dict[str, Any]:
        settings = self.plan.settings
        alerts: list[str] = []
        if self.previous is not None:
            before = CycleSnapshot(self.previous.metrics, self.previous.findings)
            after = CycleSnapshot(self.metrics(), self.findings)
            self.comparison = compare_cycles(
                before, after, regression_threshold=settings.regression_threshold
            )
            thresholds = AlertThresholds(
                settings.alert_coverage_drop,
                settings.alert_pass_rate_drop,
                settings.regression_threshold,
            )
            alerts = alert_reasons(self.comparison, thresholds)
        cycle_id = self.plan.cycle_id
        for finding in self.findings:
            self.recorder.insert("findings", cycle_id=cycle_id, **finding.to_dict())
        for rank, task in enumerate(self.tasks, 1):
            self.recorder.insert("tasks", cycle_id=cycle_id, rank=rank, **task_row(task))
        self.recorder.flush()
        metrics = self.metrics()
        self.recorder.update(
            "improve_cycles",
            cycle_id,
            status="succeeded",
            ended=time.time(),
            files=len(self.analysis.analysed),
            lines=sum(r.lines for r in self.analysis.analysed),
            coverage=metrics["coverage"],
            pass_rate=metrics["pass_rate"],
            ops_per_sec=metrics["ops_per_sec"],
            issues_detected=len(self.findings),
            issues_fixed=int(metrics["issues_fixed"] or 0),
            build_time=metrics["build_seconds"],
            test_time=metrics["test_seconds"],
            analysis_time=self.analysis.seconds,
            regression=bool(self.bench.get("regression")) or bool(alerts),
            report=self.report(),
            commit=self.tree.head if self.tree is not None and self.tree.head else None,
        )
        summary: dict[str, Any] = {"findings": len(self.findings), "tasks": len(self.tasks)}
        if alerts and self.previous is not None:
            summary |= {"regressed": "; ".join(alerts), "against": self.previous.cycle_id}
        return summary

    # The stored report

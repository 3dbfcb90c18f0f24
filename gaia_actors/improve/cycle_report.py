"""The report a cycle stores, and the rows and views of its findings and tasks."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from gaia_actors.improve.cycle_state import TOP, CycleState, PreviousCycle
from gaia_actors.improve.discover import src_layout
from gaia_actors.improve.findings import Finding
from gaia_actors.junit import Outcome

if TYPE_CHECKING:
    from gaia_actors.improve.compare import Comparison
    from gaia_actors.improve.graph import ImportGraph
    from gaia_actors.improve.tasks import Task

RANKING_NOTE = (
    "rule-based ranking: severity x priority, weighted by how many files depend on the file "
    "(import graph) and how much it changed recently (git); it does not judge what a finding means"
)


class CycleReport(CycleState):
    """The report a cycle stores with its row: every phase's results, summarised."""

    def report(self) -> dict[str, Any]:
        return {
            "cycle_id": self.plan.cycle_id,
            "target": str(self.plan.target),
            "trigger": self.plan.trigger,
            "configured_target": self.plan.configured,
            "apply": self.plan.apply,
            "analysis": self.analysis.summary(),
            "detect": self._detect_report(),
            "tests": self._tests_report(),
            "tasks": {
                "count": len(self.tasks),
                "note": RANKING_NOTE,
                "top": [task_view(t) for t in self.tasks[:TOP]],
            },
            "fixes": self.fix,
            "verify": self.bench,
            "comparison": comparison_view(self.comparison, self.previous),
            "metrics": self.metrics(),
        }

    def _detect_report(self) -> dict[str, Any]:
        graph = self.graph
        return {
            "findings": len(self.findings),
            "by_severity": dict(Counter(str(f.severity) for f in self.findings)),
            "by_type": dict(Counter(f.type for f in self.findings).most_common()),
            "linters": [
                {
                    "name": r.name,
                    "status": str(r.status),
                    "reason": r.reason,
                    "seconds": round(r.seconds, 3),
                    "findings": r.findings,
                }
                for r in (self.lint.runs if self.lint else ())
            ],
            "modules": len(graph.edges) if graph else 0,
            "import_edges": sum(len(v) for v in graph.edges.values()) if graph else 0,
            "import_cycle_count": len(graph.cycles) if graph else 0,
            "import_cycles": [list(c.example) for c in graph.cycles[:TOP]] if graph else [],
            "most_depended_on": _most_depended(graph),
        }

    def _tests_report(self) -> dict[str, Any]:
        run = self.tests
        report: dict[str, Any] = {"kind": self.test_kind, "why": self.test_reason}
        if self.build is not None:
            report["build"] = {
                "status": str(self.build.status),
                "seconds": round(self.build.seconds, 3),
                "reason": self.build.reason,
            }
        if run is None:
            return report
        from gaia_actors.improve.testing import RunStatus

        report |= {
            "status": str(run.status),
            "reason": run.reason,
            "command": list(run.command),
            "returncode": run.returncode,
            "seconds": round(run.seconds, 3),
            "pass_rate": run.pass_rate,
            "coverage": run.coverage.percent if run.coverage else None,
            "coverage_gaps": len(self._gaps(run.gaps)),
        }
        if run.junit is not None:
            junit = run.junit
            report |= {
                "tests": junit.tests,
                "passed": junit.passed,
                "failed": junit.failures,
                "errors": junit.errors,
                "skipped": junit.skipped,
                "failures": [
                    {
                        "test": ".".join(part for part in (c.classname, c.name) if part),
                        "outcome": str(c.outcome),
                        "message": c.message[:300],
                    }
                    for c in junit.cases
                    if c.outcome in (Outcome.FAILED, Outcome.ERROR)
                ][:TOP],
            }
        if run.problems:
            report["problems"] = [{"file": p.file, "reason": p.reason} for p in run.problems]
        if "PYTHONPATH" in self.test_env() and src_layout(self.plan.target):
            report["src_layout"] = "src/ first on the tests' PYTHONPATH (nothing is installed)"
        if run.status in (RunStatus.ERROR, RunStatus.TIMED_OUT, RunStatus.FAILED):
            report["output_tail"] = run.output_tail[-1500:]
        return report


def _most_depended(graph: ImportGraph | None) -> list[dict[str, Any]]:
    if graph is None:
        return []
    ranked = sorted(graph.fan_in.items(), key=lambda item: (-item[1].transitive, item[0]))
    return [
        {"file": path, "direct": fan.direct, "transitive": fan.transitive}
        for path, fan in ranked[:5]
        if fan.transitive
    ]


def task_row(task: Task) -> dict[str, Any]:
    return {
        "title": task.title,
        "score": task.score,
        "effort": str(task.effort),
        "severity": str(task.severity),
        "findings": [f.identity for f in task.findings],
        "type": task.type,
        "files": list(task.files),
        "minutes": task.minutes,
        "rationale": task.rationale,
    }


def task_view(task: Task) -> dict[str, Any]:
    return {
        "title": task.title,
        "score": task.score,
        "severity": str(task.severity),
        "effort": str(task.effort),
        "minutes": task.minutes,
        "files": list(task.files[:5]),
        "rationale": task.rationale,
    }


def finding_view(finding: Finding) -> dict[str, Any]:
    return {
        "severity": str(finding.severity),
        "type": finding.type,
        "where": f"{finding.file}:{finding.line}",
        "text": finding.text,
    }


def comparison_view(
    comparison: Comparison | None, previous: PreviousCycle | None
) -> dict[str, Any]:
    if comparison is None or previous is None:
        return {"previous_cycle": None}
    return {
        "previous_cycle": previous.cycle_id,
        "new": len(comparison.new),
        "fixed": len(comparison.fixed),
        "unchanged": len(comparison.unchanged),
        "better": list(comparison.better),
        "worse": list(comparison.worse),
        "regressions": list(comparison.regressions),
        "new_examples": [finding_view(f) for f in comparison.new[:TOP]],
        "fixed_examples": [finding_view(f) for f in comparison.fixed[:TOP]],
        "metrics": [
            {
                "name": m.name,
                "before": m.before,
                "after": m.after,
                "delta": m.delta,
                "verdict": str(m.verdict),
            }
            for m in comparison.metrics
        ],
    }

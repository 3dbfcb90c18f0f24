"""Phase 5, execute improvements: the target's own fixers, the smallest verified diff.

- Which fixers: those the operator configured for the target, else those the target's own
  configuration chooses (style.py). A target with neither gets findings and ranked tasks.
- What they may touch: files ending in ``fix_suffixes`` outside ``fix_exclude`` (Python and Go
  sources, not the docs); any other change a fixer makes is put back.
- The smallest diff: the fixed scratch copy is checked again (our detectors on the changed
  files, the linters and the formatters' checks on the tree) and a changed file is kept only
  if its change removes a finding. The findings it removes (by identity, as a multiset) are
  the fix's, reported one by one; ``issues_fixed`` counts them.
- Verified: in the scratch copy, every test that passed before passes again (pytest), or the
  test command exits 0; else the fix is dropped. A target whose tests did not run gets no fix.

What happens to a verified fix (a branch commit, a patch file) is ``delivery.py``'s.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaia_actors.improve.analysis import analyse_batch
from gaia_actors.improve.coverage import GAP_TYPE
from gaia_actors.improve.files import IgnoreFile
from gaia_actors.improve.findings import Finding
from gaia_actors.improve.fixes import FixerSpec, FixOutcome, FixStatus, Selection, run_fixers
from gaia_actors.improve.linters import LinterSpec, run_linters, without_duplicates
from gaia_actors.improve.plan import CyclePlan
from gaia_actors.improve.style import StyleTool, chosen_tools, configured_tools
from gaia_actors.improve.testing import PYTEST_FLAGS, RunStatus, TestRun
from gaia_actors.improve.verifier import verifier_argv
from gaia_actors.junit import Outcome
from supervisors.records import record

NOT_RECHECKED = frozenset({GAP_TYPE, "import_cycle"})  # need the tests or the whole graph
SHOWN_FIXED = 100
SHOWN_LEFT_OUT = 10
NOTHING_CHOSEN = (
    "the target has chosen no formatter or fixer (no ruff, black or isort configuration, no "
    "go.mod) and none is configured for it: findings and ranked tasks only"
)


def fix_tools(plan: CyclePlan) -> tuple[StyleTool, ...]:
    """The operator's fixers for this target, else the ones its own configuration chooses."""
    if plan.settings.fixers:
        return configured_tools(plan.settings.fixers)
    return chosen_tools(plan.target)


def check_specs(plan: CyclePlan, tools: Sequence[StyleTool]) -> list[LinterSpec]:
    """The formatters' checks, run as linters: each file they would change is a finding."""
    return [
        LinterSpec(t.check.name, plan.command(t.check.argv), t.check.parser, t.check.ok_returncodes)
        for t in tools
        if t.check is not None
    ]


@dataclass
class FixPhase:
    """One cycle's attempt at a verified fix (used by the cycle thread only)."""

    plan: CyclePlan
    findings: tuple[Finding, ...]
    tests: TestRun | None
    test_kind: str
    test_env: Mapping[str, str]
    lint_specs: tuple[LinterSpec, ...]
    tools: tuple[StyleTool, ...] = field(default=())

    def run(self) -> tuple[dict[str, Any], FixOutcome | None]:
        """The report of the attempt, and its outcome when fixers ran."""
        tools = [{"name": t.name, "evidence": t.evidence} for t in self.tools]
        if not self.tools:
            return {"status": "skipped", "reason": NOTHING_CHOSEN, "tools": tools}, None
        problem = self._unverifiable()
        if problem:
            return {"status": "skipped", "reason": problem, "tools": tools}, None
        specs = [FixerSpec(t.name, self.plan.command(t.fix)) for t in self.tools]
        with tempfile.TemporaryDirectory(prefix="gaia-improve-") as tmp:
            outcome = run_fixers(
                self.plan.target,
                specs,
                self._verify_argv(Path(tmp)),
                timeout=self.plan.settings.timeout,
                walk_options=self.plan.walk_options,
                test_env=self.test_env,
                select=self.select,
            )
        return {**fix_report(outcome), "tools": tools}, outcome

    def _unverifiable(self) -> str:
        """Why a fix could not be verified here, or ""."""
        run = self.tests
        if run is None or run.status in (RunStatus.SKIPPED, RunStatus.ERROR, RunStatus.TIMED_OUT):
            status = run.status if run is not None else "not run"
            return f"no fix without tests to verify it (tests: {self.test_kind}, {status})"
        if self.test_kind == "pytest":
            if run.junit is None:
                return "the test run left no JUnit results to compare a fixed tree with"
            return ""
        if run.status is not RunStatus.PASSED:
            return "the tests fail before any fix, and their exit code is all that is known"
        return ""

    def _verify_argv(self, tmp: Path) -> tuple[str, ...]:
        settings = self.plan.settings
        if self.test_kind == "pytest":
            assert self.tests is not None
            assert self.tests.junit is not None
            baseline = tmp / "baseline.json"
            passed = [
                [c.classname, c.name] for c in self.tests.junit.cases if c.outcome is Outcome.PASSED
            ]
            baseline.write_text(json.dumps({"passed": passed}), encoding="utf-8")
            pytest = (self.plan.python, "-m", "pytest", *PYTEST_FLAGS)
            return (*verifier_argv(self.plan.python, baseline), *pytest, *settings.pytest_args)
        if self.test_kind == "go":
            return (self.plan.command(("go",))[0], "test", "./...")
        return self.plan.command(settings.test_command)

    # What a fix keeps

    def select(self, scratch: Path, changed: tuple[str, ...]) -> Selection:
        """Keep the changed files in scope whose change removes a finding."""
        scope = FixScope(self.plan.settings.fix_suffixes, self.plan.settings.fix_exclude)
        in_scope = [p for p in changed if scope.allows(p)]
        left_out = [(p, "outside what fixes touch (fix_suffixes, fix_exclude)") for p in changed]
        left_out = [item for item in left_out if item[0] not in in_scope]
        wanted = set(in_scope)
        before = [f for f in self.findings if f.file in wanted and f.type not in NOT_RECHECKED]
        fixed = removed(before, self.recheck(scratch, in_scope))
        kept = {f.file for f in fixed}
        left_out += [(p, "its change removes no finding") for p in in_scope if p not in kept]
        return Selection(frozenset(kept), tuple(fixed), tuple(left_out))

    def recheck(self, scratch: Path, paths: Sequence[str]) -> list[Finding]:
        """The findings in ``paths`` of the fixed scratch copy, found as the cycle found them."""
        existing = [p for p in paths if (scratch / p).is_file()]
        results = analyse_batch(existing, scratch, self.plan.analysis_settings)
        ours = [f for r in results for f in r.findings]
        lint = run_linters(scratch, self.lint_specs, timeout=self.plan.settings.timeout)
        wanted = set(paths)
        return ours + without_duplicates([f for f in lint.findings if f.file in wanted], ours)


@record
class FixScope:
    """The files fixes may touch: these suffixes, outside these gitignore-style patterns."""

    suffixes: tuple[str, ...]
    exclude: tuple[str, ...]

    def allows(self, path: str) -> bool:
        if not path.endswith(self.suffixes):
            return False
        return not IgnoreFile.from_lines("", self.exclude).covers(path)


def removed(before: Sequence[Finding], after: Sequence[Finding]) -> list[Finding]:
    """The findings of ``before`` that ``after`` no longer has (by identity, as a multiset:
    two identical findings of which one goes count one fixed)."""
    left = Counter(f.identity for f in after)
    gone = []
    for finding in before:
        if left[finding.identity]:
            left[finding.identity] -= 1
        else:
            gone.append(finding)
    return gone


def fix_report(outcome: FixOutcome) -> dict[str, Any]:
    """A fix attempt as stored in the cycle's report."""
    verified = outcome.status is FixStatus.VERIFIED
    report: dict[str, Any] = {
        "status": str(outcome.status),
        "reason": outcome.reason,
        "seconds": round(outcome.seconds, 3),
        "fixers": [
            {"name": r.name, "status": r.status, "seconds": round(r.seconds, 3), "reason": r.reason}
            for r in outcome.fixers
        ],
        "files": list(outcome.changed_files),
        "issues_fixed": len(outcome.fixed) if verified else 0,
        "fixed": [_fixed_view(f) for f in outcome.fixed[:SHOWN_FIXED]],
        "left_out": len(outcome.left_out),
        "left_out_examples": [
            {"file": path, "why": why} for path, why in outcome.left_out[:SHOWN_LEFT_OUT]
        ],
        "applied": False,
    }
    if outcome.tests is not None and outcome.status is FixStatus.TESTS_FAILED:
        report["tests_tail"] = outcome.tests.tail(1500)
    patch = outcome.patch
    if patch is not None:
        report["diff_lines"] = patch.diff.count("\n")
        report["diff"] = patch.diff if len(patch.diff) <= 20_000 else patch.diff[:20_000] + "\n..."
    return report


def _fixed_view(finding: Finding) -> dict[str, Any]:
    return {"type": finding.type, "where": f"{finding.file}:{finding.line}", "text": finding.text}

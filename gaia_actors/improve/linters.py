"""The target's own linters (as the original runs ``go vet``), their output parsed into findings.

A linter whose executable is not installed is *skipped*, with the reason, not an error. Parsers:

- ``ruff-json``: ``ruff check --output-format=json``. Each entry becomes a ``lint`` finding
  ``"<code> <message>"``. Syntax errors (``E9xx``; ``invalid-syntax`` or no code in newer ruff)
  and the pyflakes ``F8xx`` rules (undefined names and the like: code that fails at run time)
  are high (priority 6); every other rule is low (priority 2).
- ``go-vet``: ``go vet``'s ``file.go:line:col: message`` lines (on stderr), medium
  (priority 5): vet reports likely bugs, not style.

The default ruff command adds ``--no-cache`` (ruff would otherwise write ``.ruff_cache`` into
the target tree) and ``--exit-zero`` (so a non-zero exit means ruff itself failed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from gaia_actors.improve.commands import CommandResult, run_command, which
from gaia_actors.improve.errors import CommandError
from gaia_actors.improve.findings import Finding, Severity
from supervisors.records import record

LINT_TYPE = "lint"
FORMAT_TYPE = "format"  # a file the target's formatter would change


@record
class LinterSpec:
    """A linter to run in the target directory and how to read its output."""

    name: str
    argv: tuple[str, ...]
    parser: str  # "ruff-json" or "go-vet"
    ok_returncodes: tuple[int, ...] = (0,)


RUFF = LinterSpec(
    "ruff", ("ruff", "check", "--output-format=json", "--no-cache", "--exit-zero", "."), "ruff-json"
)
# go vet exits non-zero when it reports something (2 with Debian 12's Go 1.19, 1 with others):
# its output, not the code, says whether it found a problem.
GO_VET = LinterSpec("go vet", ("go", "vet", "./..."), "go-vet", ok_returncodes=(0, 1, 2))
DEFAULT_LINTERS = (RUFF, GO_VET)


class LinterStatus(StrEnum):
    RAN = "ran"
    SKIPPED = "skipped"  # the executable is not installed
    FAILED = "failed"  # it crashed, timed out or printed something unreadable


@record
class LinterRun:
    """What happened to one configured linter."""

    name: str
    status: LinterStatus
    reason: str = ""
    seconds: float = 0.0
    findings: int = 0


@record
class LintResult:
    findings: tuple[Finding, ...]
    runs: tuple[LinterRun, ...]


def run_linters(
    root: str | Path, linters: Sequence[LinterSpec] = DEFAULT_LINTERS, timeout: float = 300.0
) -> LintResult:
    """Run each linter that is installed in ``root``; collect findings and per-linter status."""
    top = Path(root).resolve()
    findings: list[Finding] = []
    runs: list[LinterRun] = []
    for spec in linters:
        run, found = _run_one(top, spec, timeout)
        runs.append(run)
        findings.extend(found)
    return LintResult(tuple(findings), tuple(runs))


def _run_one(root: Path, spec: LinterSpec, timeout: float) -> tuple[LinterRun, list[Finding]]:
    parser = PARSERS.get(spec.parser)
    if parser is None:
        return LinterRun(spec.name, LinterStatus.FAILED, f"unknown parser {spec.parser!r}"), []
    if not spec.argv or which(spec.argv[0]) is None:
        missing = spec.argv[0] if spec.argv else "(empty argv)"
        return LinterRun(spec.name, LinterStatus.SKIPPED, f"{missing} not found on PATH"), []
    result = _execute(root, spec, timeout)
    if isinstance(result, LinterRun):
        return result, []
    try:
        found = parser(result.stdout, result.stderr, root)
    except (ValueError, KeyError, TypeError) as exc:
        reason = f"unreadable output: {type(exc).__name__}: {exc}"
        return LinterRun(spec.name, LinterStatus.FAILED, reason, result.seconds), []
    return LinterRun(spec.name, LinterStatus.RAN, "", result.seconds, len(found)), found


def _execute(root: Path, spec: LinterSpec, timeout: float) -> CommandResult | LinterRun:
    """The linter's result, or a FAILED run when it did not start, timed out or crashed."""
    try:
        result = run_command(spec.argv, root, timeout=timeout)
    except CommandError as exc:
        return LinterRun(spec.name, LinterStatus.FAILED, str(exc))
    if result.timed_out:
        return LinterRun(
            spec.name, LinterStatus.FAILED, f"timed out after {timeout}s", result.seconds
        )
    if result.returncode not in spec.ok_returncodes:
        reason = f"exit code {result.returncode}: {result.tail(500)}"
        return LinterRun(spec.name, LinterStatus.FAILED, reason, result.seconds)
    return result


def _relative(filename: str, root: Path) -> str:
    path = Path(filename)
    if not path.is_absolute():
        path = root / path
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()  # outside the target: keep it as the tool said it


def ruff_severity(code: str | None) -> tuple[Severity, int]:
    """High for syntax errors and F8xx (fails at run time), low for everything else."""
    if code is None or code == "invalid-syntax" or code.startswith(("E9", "F8")):
        return Severity.HIGH, 6
    return Severity.LOW, 2


def parse_ruff_json(stdout: str, stderr: str, root: Path) -> list[Finding]:
    """``ruff check --output-format=json`` output as ``lint`` findings."""
    entries: list[dict[str, Any]] = json.loads(stdout or "[]")
    findings: list[Finding] = []
    for entry in entries:
        code = entry.get("code")
        severity, priority = ruff_severity(code)
        label = code or "syntax-error"
        text = f"{label} {entry['message']}"
        findings.append(
            Finding(
                type=LINT_TYPE,
                file=_relative(str(entry["filename"]), root),
                line=int(entry["location"]["row"]),
                text=text,
                severity=severity,
                priority=priority,
                detector="ruff",
            )
        )
    return findings


_VET_LINE = re.compile(r"^(?:vet: )?(?P<file>[^\s:][^:]*\.go):(?P<line>\d+)(?::\d+)?: (?P<msg>.+)$")


def parse_go_vet(stdout: str, stderr: str, root: Path) -> list[Finding]:
    """``go vet`` diagnostics (``path.go:line:col: message``) as ``lint`` findings."""
    findings: list[Finding] = []
    for line in (stderr + "\n" + stdout).splitlines():
        match = _VET_LINE.match(line.strip())
        if match is None:
            continue
        findings.append(
            Finding(
                type=LINT_TYPE,
                file=_relative(match["file"], root),
                line=int(match["line"]),
                text=f"vet {match['msg']}",
                severity=Severity.MEDIUM,
                priority=5,
                detector="go vet",
            )
        )
    return findings


# "Would reformat: a.py" (ruff format --check before 0.9), "--> a.py:1:2" under "unformatted:"
# (later ruff), "would reformat a.py" (black --check), "ERROR: /abs/a.py Imports are incorrectly
# sorted and/or formatted." (isort --check-only).
_REFORMAT_LINE = re.compile(
    r"^(?:(?:would reformat:?|error:)\s+(?P<file>.+?)(?:\s+Imports are incorrectly sorted.*)?"
    r"|-->\s+(?P<located>.+?):\d+:\d+)$",
    re.I,
)


def parse_reformat(stdout: str, stderr: str, root: Path) -> list[Finding]:
    """A formatter's check mode (ruff format, black, isort): one ``format`` finding per file
    it would change."""
    lines = (stdout + "\n" + stderr).splitlines()
    matches = [m for line in lines if (m := _REFORMAT_LINE.match(line.strip()))]
    files = dict.fromkeys(m["file"] or m["located"] for m in matches)  # once each, in order
    return [_format_finding(_relative(name, root)) for name in files]


def parse_file_list(stdout: str, stderr: str, root: Path) -> list[Finding]:
    """A formatter that lists the files it would change, one per line (``gofmt -l``)."""
    names = [line.strip() for line in stdout.splitlines() if line.strip()]
    return [_format_finding(_relative(name, root)) for name in names]


def _format_finding(path: str) -> Finding:
    return Finding(
        type=FORMAT_TYPE,
        file=path,
        line=1,
        text="not formatted as the target's formatter formats it",
        severity=Severity.LOW,
        priority=1,
        detector="format",
    )


PARSERS: dict[str, Callable[[str, str, Path], list[Finding]]] = {
    "ruff-json": parse_ruff_json,
    "go-vet": parse_go_vet,
    "reformat": parse_reformat,
    "file-list": parse_file_list,
}


# --- lint findings our own detectors already report ------------------------------------

_SYNTAX_CODES = frozenset({"syntax-error", "invalid-syntax", "E999"})
# Linter rules that report what one of our detectors reports (ruff's codes).
_SAME_AS = {
    "E722": "bare_except",
    "T100": "debugger",
    "FIX001": "fixme",
    "FIX002": "todo",
    "FIX003": "xxx",
    "FIX004": "hack",
}


def without_duplicates(lint: Sequence[Finding], ours: Sequence[Finding]) -> list[Finding]:
    """Lint findings minus those that say what one of our detectors already says: a linter's
    syntax error in a file we report as a syntax error, its bare-except, debugger or marker
    rule on a line where we report the same."""
    broken = {f.file for f in ours if f.type == "syntax_error"}
    reported = {(f.file, f.line, f.type) for f in ours}
    kept = []
    for finding in lint:
        code = finding.text.split(" ", 1)[0]
        if code in _SYNTAX_CODES and finding.file in broken:
            continue
        if (finding.file, finding.line, _SAME_AS.get(code, "")) in reported:
            continue
        kept.append(finding)
    return kept

"""Findings grouped into ranked improvement tasks, with an effort estimate.

The ranking is rule-based: fixed weights and formulas, no learning and no judgement of what a
finding means. It orders work sensibly; it does not know which TODO matters to you.

Grouping. Findings of one type in one file make one task ("3 FIXMEs in store.py"). When a type
is *scattered* — at least ``scatter_min_files`` files hold exactly one finding of it — those
single findings become one task for the type ("12 scattered TODOs"), so a long tail of
one-offs does not bury the concentrated problems.

Score (higher first)::

    impact     = max(weight(severity) * priority) + 0.25 * sum of the same for the others
    importance = 1 + log2(1 + transitive fan-in) / 4        (how many files depend on it)
    churn      = 1 + log2(1 + lines changed recently) / 8   (git log --numstat, last N commits)
    score      = impact * importance * churn

with weight critical 8, high 4, medium 2, low 1. For a scattered task, fan-in and churn are the
largest among its files. Without git (or outside a repository) churn is 0 for every file.

Effort: minutes per finding by type (below), summed; small < 30 min <= medium < 120 <= large.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path

from gaia_actors.improve.commands import run_command, which
from gaia_actors.improve.errors import CommandError
from gaia_actors.improve.findings import Finding, Severity, sort_key
from gaia_actors.improve.graph import FanIn
from supervisors.records import record

SEVERITY_WEIGHT = {Severity.CRITICAL: 8, Severity.HIGH: 4, Severity.MEDIUM: 2, Severity.LOW: 1}
MINUTES_PER_FINDING = {
    "todo": 15,
    "fixme": 20,
    "xxx": 15,
    "hack": 30,
    "panic": 20,
    "debugger": 2,
    "bare_except": 10,
    "not_implemented": 30,
    "long_function": 45,
    "syntax_error": 10,
    "lint": 3,
    "coverage_gap": 30,
    "import_cycle": 60,
}
DEFAULT_MINUTES = 15
SMALL_MINUTES = 30
LARGE_MINUTES = 120


class Effort(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


@record
class Task:
    """One improvement task: what, where, how important (``score``), how much work."""

    id: str
    title: str
    type: str
    files: tuple[str, ...]
    findings: tuple[Finding, ...]
    severity: Severity
    score: float
    effort: Effort
    minutes: int
    rationale: str


def build_tasks(
    findings: Iterable[Finding],
    *,
    fan_in: Mapping[str, FanIn] | None = None,
    churn: Mapping[str, int] | None = None,
    scatter_min_files: int = 3,
) -> list[Task]:
    """Group ``findings`` into tasks, ranked by score (see the module docstring)."""
    groups = _group(list(findings), scatter_min_files)
    tasks = [_task(key, members, fan_in or {}, churn or {}) for key, members in groups.items()]
    return sorted(tasks, key=lambda t: (-t.score, t.title))


def _group(
    findings: Sequence[Finding], scatter_min_files: int
) -> dict[tuple[str, str], list[Finding]]:
    by_file: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        by_file[(finding.type, finding.file)].append(finding)
    singles: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, members in by_file.items():
        if len(members) == 1:
            singles[key[0]].append(key)
    groups: dict[tuple[str, str], list[Finding]] = {}
    for key, members in by_file.items():
        if len(singles[key[0]]) >= scatter_min_files and len(members) == 1:
            groups.setdefault((key[0], ""), []).extend(members)  # "" file: scattered
        else:
            groups[key] = members
    return groups


def _task(
    key: tuple[str, str],
    members: list[Finding],
    fan_in: Mapping[str, FanIn],
    churn: Mapping[str, int],
) -> Task:
    kind, file = key
    members.sort(key=sort_key)
    files = tuple(sorted({f.file for f in members}))
    impacts = sorted((SEVERITY_WEIGHT[f.severity] * f.priority for f in members), reverse=True)
    impact = impacts[0] + 0.25 * sum(impacts[1:])
    dependants = max((fan_in[f].transitive for f in files if f in fan_in), default=0)
    changed = max((churn.get(f, 0) for f in files), default=0)
    importance = 1 + math.log2(1 + dependants) / 4
    recent = 1 + math.log2(1 + changed) / 8
    minutes = MINUTES_PER_FINDING.get(kind, DEFAULT_MINUTES) * len(members)
    return Task(
        id=_task_id(kind, file),
        title=_title(kind, file, members),
        type=kind,
        files=files,
        findings=tuple(members),
        severity=members[0].severity,
        score=round(impact * importance * recent, 2),
        effort=_effort(minutes),
        minutes=minutes,
        rationale=(
            f"impact {impact:g} ({len(members)} x {kind}, worst {members[0].severity}) "
            f"x importance {importance:.2f} ({dependants} dependants) "
            f"x churn {recent:.2f} ({changed} lines changed recently)"
        ),
    )


def _task_id(kind: str, file: str) -> str:
    digest = hashlib.sha1(f"{kind}\0{file}".encode(), usedforsecurity=False).hexdigest()
    return digest[:12]


def _title(kind: str, file: str, members: Sequence[Finding]) -> str:
    label = kind.upper() if kind in ("todo", "fixme", "xxx", "hack") else kind.replace("_", " ")
    count = len(members)
    if not file:
        return f"{count} scattered {label} findings in {len({f.file for f in members})} files"
    return f"{count} {label} finding{'s' if count > 1 else ''} in {file}"


def _effort(minutes: int) -> Effort:
    if minutes < SMALL_MINUTES:
        return Effort.SMALL
    return Effort.MEDIUM if minutes < LARGE_MINUTES else Effort.LARGE


# --- churn ----------------------------------------------------------------------------

_RENAME = re.compile(r"\{([^{}]*) => ([^{}]*)\}")


def git_churn(root: str | Path, commits: int = 200, timeout: float = 30.0) -> dict[str, int]:
    """Lines added + deleted per file (relative to ``root``) over the last ``commits`` commits.

    Empty when git is missing, ``root`` is not inside a repository, or git fails.
    """
    top = Path(root).resolve()
    if which("git") is None:
        return {}
    argv = ["git", "-C", str(top), "log", f"-n{commits}", "--numstat", "--format=", "--relative"]
    try:
        result = run_command(argv, top, timeout=timeout)
    except CommandError:
        return {}
    if not result.ok:
        return {}
    return parse_numstat(result.stdout)


def parse_numstat(text: str) -> dict[str, int]:
    """``git log --numstat`` lines (``added<TAB>deleted<TAB>path``) summed per path.

    Binary files (``-`` counts) count 0; a rename (``a => b`` or ``dir/{a => b}/f``) counts
    for the new path.
    """
    churn: dict[str, int] = defaultdict(int)
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        added, deleted, path = parts
        lines = (int(added) if added.isdigit() else 0) + (int(deleted) if deleted.isdigit() else 0)
        churn[_new_path(path)] += lines
    return dict(churn)


def _new_path(path: str) -> str:
    if "{" in path and " => " in path:
        return _RENAME.sub(lambda m: m.group(2), path).replace("//", "/")
    if " => " in path:
        return path.split(" => ", 1)[1]
    return path

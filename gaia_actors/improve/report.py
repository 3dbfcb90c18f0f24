"""Readable text for ``improve``: a cycle's report and the history of cycles.

Everything takes the JSON-friendly dicts the command returns (``history.show`` and
``history.trend``) or the engine's watcher updates, and returns text; the CLI's printer
writes it (or prints the JSON itself with ``--json``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gaia_actors.formatting import scalar, table
from gaia_actors.improve.status import PHASES

SEVERITIES = ("critical", "high", "medium", "low")
SHOWN = 15


# --- one cycle ----------------------------------------------------------------------------


def render_improve(result: Any) -> str:
    """The ``improve`` command's result: a cycle, the history, or a detached cycle."""
    if not isinstance(result, Mapping):
        return scalar(result)
    if result.get("detached"):
        return f"cycle #{result['cycle_id']} {result['note']}"
    if "cycles" in result:
        return render_history(result)
    return render_cycle(result)


def render_cycle(r: Mapping[str, Any]) -> str:
    lines = [_headline(r), _phases_line(r.get("phases") or {})]
    if r.get("error"):
        lines.append(f"error: {r['error']}")
    sections = [
        ("analysis", _analysis(r.get("analysis") or {})),
        ("findings", _findings_line(r.get("detect") or {})),
        ("linters", _linters(r.get("detect") or {})),
        ("imports", _imports(r.get("detect") or {})),
        ("build", _build(r.get("tests") or {})),
        ("tests", _tests(r.get("tests") or {})),
        ("fixes", _fixes(r.get("fixes") or {}, bool(r.get("apply")))),
        ("benchmark", _benchmark(r.get("verify") or {})),
        ("compared", _compared(r.get("comparison") or {})),
    ]
    lines.append("")
    for label, text in sections:
        for i, line in enumerate(text):
            lines.append(f"{label if i == 0 else '':<10} {line}".rstrip())
    lines.extend(_top_findings(r))
    lines.extend(_top_tasks(r))
    return "\n".join(lines)


def _headline(r: Mapping[str, Any]) -> str:
    took = f" in {secs(r['seconds'])}" if r.get("seconds") is not None else ""
    mode = "apply" if r.get("apply") else "report only"
    head = f"improvement cycle #{r.get('cycle_id')} of {r.get('target')}"
    return f"{head}: {r.get('status')}{took} ({mode})"


def _phases_line(phases: Mapping[str, Any]) -> str:
    done = [f"{name} {secs(phases[name])}" for name in PHASES if name in phases]
    return "phases: " + (" · ".join(done) if done else "(none finished)")


def _analysis(a: Mapping[str, Any]) -> list[str]:
    if not a:
        return []
    line = (
        f"{a.get('files', 0):,} files, {a.get('lines', 0):,} lines, {_mb(a.get('bytes', 0))} "
        f"in {a.get('batches', 0)} batches on {a.get('workers', 0)} workers"
    )
    if a.get("requeued"):
        line += f" ({a['requeued']} batches re-queued after a worker failure)"
    lines = [line]
    skipped = a.get("skipped") or {}
    if skipped:
        counts = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        lines.append(f"skipped: {counts}")
        for example in (a.get("skipped_examples") or [])[:5]:
            lines.append(f"  {example['path']}: {example['reason']} ({example['detail']})")
    return lines


def _findings_line(d: Mapping[str, Any]) -> list[str]:
    if not d:
        return []
    by_severity = d.get("by_severity") or {}
    severities = ", ".join(f"{by_severity[s]} {s}" for s in SEVERITIES if by_severity.get(s))
    kinds = ", ".join(f"{kind} {n}" for kind, n in (d.get("by_type") or {}).items())
    return [f"{d.get('findings', 0)} ({severities or 'none'})", kinds] if kinds else ["none"]


def _linters(d: Mapping[str, Any]) -> list[str]:
    parts = []
    for run in d.get("linters") or []:
        if run["status"] == "ran":
            parts.append(f"{run['name']}: {run['findings']} findings in {secs(run['seconds'])}")
        else:
            parts.append(f"{run['name']}: {run['status']} ({run['reason'][:80]})")
    return ["; ".join(parts)] if parts else []


def _imports(d: Mapping[str, Any]) -> list[str]:
    if not d.get("modules"):
        return []
    cycles = d.get("import_cycles") or []
    count = d.get("import_cycle_count", len(cycles))
    lines = [f"{d['modules']} modules, {d.get('import_edges', 0)} imports, {count} cycles"]
    lines.extend(f"cycle: {' -> '.join(cycle)}" for cycle in cycles[:3])
    most = d.get("most_depended_on") or []
    if most:
        names = ", ".join(f"{m['file']} ({m['transitive']})" for m in most[:3])
        lines.append(f"most depended on: {names}")
    return lines


def _build(t: Mapping[str, Any]) -> list[str]:
    build = t.get("build")
    if not build:
        return []
    return [f"{build['status']} in {secs(build['seconds'])} {build.get('reason', '')}".rstrip()]


def _tests(t: Mapping[str, Any]) -> list[str]:
    if not t:
        return []
    kind, status = t.get("kind"), t.get("status", "skipped")
    if status == "skipped" or kind == "none":
        return [f"not run: {t.get('reason') or t.get('why')}"]
    line = f"{kind}: {status} in {secs(t.get('seconds', 0))}"
    if t.get("tests") is not None:
        line += (
            f" - {t['tests']} tests, {t['passed']} passed, {t['failed']} failed, "
            f"{t['errors']} errors, {t['skipped']} skipped"
        )
    lines = [
        line,
        f"pass rate {_percent(t.get('pass_rate'))}, coverage {_pct(t.get('coverage'))}"
        f" ({t.get('coverage_gaps', 0)} coverage gaps)",
    ]
    for failure in (t.get("failures") or [])[:5]:
        message = _short(failure["message"].strip().split("\n", 1)[0], 100)
        lines.append(f"  {failure['outcome']}: {failure['test']} {message}".rstrip())
    if t.get("reason"):
        lines.append(f"note: {t['reason']}")
    for problem in (t.get("problems") or [])[:SHOWN]:
        lines.append(f"  cannot run {problem['file'] or 'the suite'}: {problem['reason']}")
    if t.get("src_layout"):
        lines.append(f"note: {t['src_layout']}")
    if status in ("error", "timed_out") and t.get("output_tail"):
        lines.extend(f"  | {line}" for line in t["output_tail"].splitlines()[-8:])
    return lines


def _fixes(f: Mapping[str, Any], apply: bool) -> list[str]:
    if not f:
        return []
    status = f.get("status")
    ran = ", ".join(x["name"] for x in f.get("fixers", []) if x["status"] == "ran")
    files = f.get("files") or []
    tools = [f"{t['name']} ({t['evidence']})" for t in f.get("tools") or []]
    chosen = [f"tools: {', '.join(tools)}"] if tools else []
    if status == "verified":
        line = (
            f"verified patch fixing {f.get('issues_fixed', 0)} findings ({len(files)} files, "
            f"{f.get('diff_lines', 0)} diff lines) by {ran}"
        )
        if f.get("applied"):
            line += f"; APPLIED to {len(f.get('applied_files', []))} files"
        elif f.get("apply_error"):
            line += f"; NOT applied: {f['apply_error']}"
        elif not apply:
            line += "; not applied (improve --apply writes it)"
        fixed = [f"  fixed {x['type']} {x['where']}: {x['text']}" for x in f.get("fixed", [])]
        left = f.get("left_out", 0)
        kept_out = [f"  left out {left} changed files (docs, other files, no finding removed)"]
        return [line, *chosen, *fixed[:10], *(kept_out if left else [])]
    if status == "tests_failed":
        return [
            f"rolled back: the tests fail with the changes of {ran} ({f.get('reason')}); "
            "the tree is untouched",
            *[f"  would have changed {path}" for path in files[:5]],
        ]
    if status == "no_changes":
        return [f"nothing to fix ({ran} changed nothing)"]
    return [f"{status}: {f.get('reason', '')}".rstrip(": "), *chosen]


def _benchmark(v: Mapping[str, Any]) -> list[str]:
    if not v:
        return []
    if v.get("status") != "ran":
        return [f"{v.get('status')}: {v.get('reason', '')}"]
    line = f"{v['ops_per_sec']:,.0f} ops/sec in {secs(v.get('seconds', 0))}"
    previous = v.get("previous")
    if previous:
        change = v.get("change")
        line += f" (cycle #{previous['cycle_id']}: {previous['ops_per_sec']:,.0f}"
        line += f", {change:+.1%})" if isinstance(change, int | float) else ")"
    if v.get("regression"):
        line += " - REGRESSION beyond the threshold"
    return [line]


def _compared(c: Mapping[str, Any]) -> list[str]:
    if not c.get("previous_cycle"):
        return ["no earlier finished cycle of this target"]
    lines = [
        f"with cycle #{c['previous_cycle']}: {c['new']} new, {c['fixed']} fixed, "
        f"{c['unchanged']} unchanged findings (by identity, not line)"
    ]
    if c.get("better") or c.get("worse"):
        better = ", ".join(c.get("better") or []) or "-"
        worse = ", ".join(c.get("worse") or []) or "-"
        lines.append(f"better: {better}; worse: {worse}")
    lines.extend(_examples("new", c.get("new_examples") or []))
    lines.extend(_examples("fixed", c.get("fixed_examples") or []))
    return lines


def _examples(label: str, examples: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        f"  {label}: {e['severity']} {e['type']} {e['where']} {_short(e['text'])}"
        for e in examples[:5]
    ]


def _top_findings(r: Mapping[str, Any]) -> list[str]:
    rows = r.get("top_findings") or []
    if not rows:
        return []
    total = (r.get("detect") or {}).get("findings", len(rows))
    shown = [
        {"severity": f["severity"], "type": f["type"], "where": f["where"], "text": f["text"]}
        for f in rows[:SHOWN]
    ]
    return ["", f"most important findings ({len(shown)} of {total}):", table(shown, "  ")]


def _top_tasks(r: Mapping[str, Any]) -> list[str]:
    rows = r.get("top_tasks") or []
    if not rows:
        return []
    note = (r.get("tasks") or {}).get("note", "")
    count = (r.get("tasks") or {}).get("count", len(rows))
    shown = [
        {
            "#": t["rank"],
            "score": t["score"],
            "effort": f"{t['effort']} (~{t['minutes']} min)",
            "task": t["title"],
        }
        for t in rows[:10]
    ]
    return ["", f"tasks ({len(shown)} of {count}; {note}):", table(shown, "  ")]


# --- the history ----------------------------------------------------------------------------


def render_history(h: Mapping[str, Any]) -> str:
    cycles = h.get("cycles") or []
    lines = [f"improvement cycles of {h.get('target')} (oldest first):"]
    if not cycles:
        lines.append("  (none yet: run `improve`)")
    else:
        lines.append(table([_history_row(c) for c in cycles], "  "))
    latest = h.get("latest")
    if latest:
        lines += ["", *_latest(latest)]
    elif len(cycles) == 1:
        lines += ["", "one cycle so far: nothing to compare it with"]
    others = h.get("other_targets") or []
    if others:
        named = ", ".join(f"{o['target']} ({o['cycles']})" for o in others[:5])
        lines += ["", f"other targets (improve --history --target PATH): {named}"]
    return "\n".join(lines)


def _history_row(c: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "cycle": c["cycle_id"],
        "started": (c.get("started") or "").replace("T", " ").replace("+00:00", "Z"),
        "by": c.get("trigger") or "manual",
        "status": c["status"],
        "files": c.get("files"),
        "findings": c.get("issues_detected"),
        "new": c.get("new", ""),
        "fixed": c.get("fixed", ""),
        "coverage": _pct(c.get("coverage")),
        "pass": _percent(c.get("pass_rate")),
        "ops/sec": f"{c['ops_per_sec']:,.0f}" if c.get("ops_per_sec") else "-",
        "fixes": c.get("issues_fixed") or "-",
        "alert": "REGRESSED" if c.get("regression") else "",
        "tests": secs(c["test_time"]) if c.get("test_time") else "-",
        "took": secs(c["seconds"]) if c.get("seconds") else "-",
    }


def _latest(c: Mapping[str, Any]) -> list[str]:
    lines = [
        f"cycle #{c['cycle_id']} against #{c['previous_cycle']}: {c['new']} new, "
        f"{c['fixed']} fixed, {c['unchanged']} unchanged findings (matched by identity)",
        f"  better: {', '.join(c.get('better') or []) or '-'}",
        f"  worse:  {', '.join(c.get('worse') or []) or '-'}",
    ]
    if c.get("regressions"):
        lines.append(f"  REGRESSION: {', '.join(c['regressions'])}")
    rows = [
        {
            "metric": m["name"],
            "before": _metric(m["before"]),
            "after": _metric(m["after"]),
            "verdict": m["verdict"],
        }
        for m in c.get("metrics") or []
        if m["before"] is not None or m["after"] is not None
    ]
    if rows:
        lines.append(table(rows, "  "))
    lines.extend(_examples("new", c.get("new_examples") or []))
    lines.extend(_examples("fixed", c.get("fixed_examples") or []))
    return lines


# --- numbers --------------------------------------------------------------------------------


def secs(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.2f}s" if value < 60 else f"{int(value // 60)}m{value % 60:04.1f}s"


def _mb(size: Any) -> str:
    return f"{(size or 0) / 1e6:.1f} MB"


def _pct(value: Any) -> str:
    return f"{value:.1f}%" if isinstance(value, int | float) else "-"


def _percent(fraction: Any) -> str:
    return f"{100 * fraction:.1f}%" if isinstance(fraction, int | float) else "-"


def _metric(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."

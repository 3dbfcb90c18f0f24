"""Verifying a fix with pytest: no test that passed before the fix may fail with it.

``verify_main`` runs in the scratch copy as the fix's test command; it is started through
``verifier_argv`` so that it imports this package, not the scratch copy's (when the target is
this very project, its copy holds its own, possibly fixed, ``gaia_actors``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

import gaia_actors
from gaia_actors.junit import Outcome
from gaia_actors.junit import parse as parse_junit


def verifier_argv(python: str, baseline: Path) -> tuple[str, ...]:
    """The command prefix that runs ``verify_main`` with this package, whatever the cwd (the
    scratch copy of this very project holds its own, possibly fixed, ``gaia_actors``)."""
    package_root = str(Path(gaia_actors.__file__).resolve().parent.parent)
    boot = (
        f"import sys; sys.path.insert(0, {package_root!r}); "
        "from gaia_actors.improve.verifier import verify_main; sys.exit(verify_main(sys.argv[1:]))"
    )
    return (python, "-c", boot, "--baseline", str(baseline), "--")


def verify_main(argv: Sequence[str]) -> int:
    """``--baseline FILE -- PYTEST ARGV``: run pytest (adding ``--junitxml``) in the current
    directory; exit 0 when every test the baseline lists as passed passes again."""
    if len(argv) < 4 or argv[0] != "--baseline" or argv[2] != "--":
        print("usage: --baseline FILE -- PYTEST ARGV...", file=sys.stderr)
        return 2
    baseline = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    before = {(c, n) for c, n in baseline["passed"]}
    with tempfile.TemporaryDirectory(prefix="gaia-verify-") as tmp:
        junit = Path(tmp) / "junit.xml"
        code = subprocess.call([*argv[3:], f"--junitxml={junit}"])  # output goes to our caller
        try:
            report = parse_junit(junit.read_text(encoding="utf-8"))
        except (OSError, ValueError, ElementTree.ParseError):
            print(f"pytest exited {code} and wrote no readable JUnit results", file=sys.stderr)
            return code or 1
    passed = {(c.classname, c.name) for c in report.cases if c.outcome is Outcome.PASSED}
    lost = sorted(before - passed)
    if lost:
        names = ", ".join(f"{c}.{n}" for c, n in lost[:20])
        print(f"{len(lost)} test(s) that passed before the fix do not pass: {names}")
        return 1
    if code not in (0, 1):  # 1: some tests failed, all of which failed before as well
        return code
    failing = report.failures + report.errors
    print(f"every test that passed before passes ({len(passed)}); failing as before: {failing}")
    return 0

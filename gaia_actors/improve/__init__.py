"""Self-improvement engine: the analysis core (pure, synchronous functions) and, later, its actors.

Modules, bottom up (each imports only the ones above it):

- ``errors``     the error tree of this package
- ``findings``   ``Finding`` (one detected issue, with a line-independent identity) and ``Severity``
- ``commands``   run a command in its own process group with a timeout, capturing its output
- ``files``      walk a target tree: gitignore-style exclusions, symlinks, skipped-file reasons
- ``pysource``   Python comments and string spans (``tokenize``, and a fast C-regex lexer)
- ``gosource``   a small Go lexer (comments, strings, raw strings, runes, func scopes)
- ``graph``      the Python import graph: cycles and fan-in per file
- ``sources``    the analysis settings, and a file as the detectors see it (parsed once)
- ``detectors``  the detector kinds (markers, debugger calls, bare excepts, ...)
- ``analysis``   ``analyse_file``, ``analyse_batch``, ``tally_batch``: read, decode, detect
- ``linters``    configured linters (``ruff check``, ``go vet``) parsed into findings
- ``coverage``   coverage JSON, per-function ranges from the AST, coverage gaps as findings
- ``testing``    the Python tests under coverage, JUnit XML, why tests could not run
- ``gotests``    Go's tests and its cover profile
- ``benchmark``  the build command and the benchmark's ops/sec
- ``tasks``      rule-based ranking of findings into improvement tasks, git churn
- ``patches``    a verified patch: made as a unified diff, parsed, applied all or nothing
- ``fixes``      mechanical fixers in a scratch copy, kept only as a verified patch
- ``compare``    two cycles compared: new / fixed / unchanged findings, metric deltas, alerts
- ``discover``   how a target's tests are found (as pytest finds them), src layouts
- ``style``      the formatters and fixers a target's own configuration chooses
- ``plan``       what one cycle runs on its target (the configured one, a named one, any other)
- ``verifier``   a fix's tests: every test that passed before passes again
- ``improvements`` phase 5: the target's fixers, the smallest diff that removes findings
- ``delivery``   a verified fix as a patch file, a branch commit (git), or the patched tree
- ``schedule``   which targets run on a schedule and when one is due

The cycle (``cycle_state.py``, ``cycle.py``, ``cycle_report.py``) runs phases 2-7 over these;
the actors (``engine.py`` on ``dispatch.py`` and ``cyclerun.py``, ``worker.py``, whose analysis
processes run ``batches.py``) drive it, and ``report.py`` and ``progress.py`` turn results into
text. Nothing in the list talks to actors.
"""

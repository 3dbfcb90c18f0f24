"""Self-improvement engine: the analysis core (pure, synchronous functions) and, later, its actors.

Modules, bottom up (each imports only the ones above it):

- ``errors``     the error tree of this package
- ``findings``   ``Finding`` (one detected issue, with a line-independent identity) and ``Severity``
- ``commands``   run a command in its own process group with a timeout, capturing its output
- ``files``      walk a target tree: gitignore-style exclusions, symlinks, skipped-file reasons
- ``pysource``   Python comments and string spans (``tokenize``, and a fast C-regex lexer)
- ``gosource``   a small Go lexer (comments, strings, raw strings, runes, func scopes)
- ``graph``      the Python import graph: cycles and fan-in per file
- ``detectors``  the detectors, ``analyse_file`` and ``analyse_batch``
- ``linters``    configured linters (``ruff check``, ``go vet``) parsed into findings
- ``testing``    tests under coverage, JUnit XML and coverage JSON, benchmarks
- ``tasks``      rule-based ranking of findings into improvement tasks, git churn
- ``fixes``      mechanical fixers in a scratch copy, verified patches, transactional apply
- ``compare``    two cycles compared: new / fixed / unchanged findings, metric deltas, alerts
- ``discover``   how a target's tests are found (as pytest finds them), src layouts
- ``style``      the formatters and fixers a target's own configuration chooses
- ``plan``       what one cycle runs on its target (the configured one, a named one, any other)
- ``verifier``   a fix's tests: every test that passed before passes again
- ``improvements`` phase 5: the target's fixers, the smallest diff that removes findings
- ``delivery``   a verified fix as a patch file, a branch commit (git), or the patched tree
- ``schedule``   which targets run on a schedule and when one is due

The actors (``engine.py``, ``worker.py``) call these; nothing here talks to actors.
"""

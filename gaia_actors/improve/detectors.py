"""Detectors: the kinds of issue the analysis finds in a Python or Go file.

Severity and priority follow the original tool (TODO medium, FIXME high, panic critical):

====================  ========  ========  =====================================================
type                  severity  priority  what
====================  ========  ========  =====================================================
todo                  medium    5         ``TODO`` in a comment (Python and Go)
fixme                 high      7         ``FIXME`` in a comment
xxx                   medium    5         ``XXX`` in a comment
hack                  medium    6         ``HACK`` in a comment
panic                 critical  9         ``panic(`` in Go code outside ``_test.go`` files
debugger              high      8         ``breakpoint()``, ``pdb.set_trace()`` and the like
bare_except           medium    6         ``except:`` with no exception type
not_implemented       medium    4         ``raise NotImplementedError`` outside abstract methods
long_function         low       3         a function longer than ``max_function_lines``
syntax_error          critical  10        the file does not parse (or does not tokenize)
====================  ========  ========  =====================================================

Markers are the uppercase words, matched whole (``\\bTODO\\b``: not ``TODOS``, not
``todo``), and only inside comments: Python comments come from ``tokenize`` (or, in the
comment-markers-only mode, from the equivalent fast lexer in ``pysource``), Go comments from the
lexer in ``gosource``. One finding per distinct marker per comment line.

``raise NotImplementedError`` is allowed (not reported) in a function decorated with
``abstractmethod`` (or ``abstractproperty``/``abstractclassmethod``/``abstractstaticmethod``),
and in any method defined directly in a class that derives from ``ABC`` or ``Protocol`` or has
``metaclass=ABCMeta``; everywhere else, including plain base classes whose "hooks" raise it, it
is reported, because calling such a method fails at run time.

Detectors are small classes on two bases: ``Detector`` (``detect(source)``) and
``AstDetector`` (``check(node, scope, source)`` for the node types it names), so a file is parsed
once and its tree walked once, whatever the number of AST detectors.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import ClassVar

from gaia_actors.improve import pysource, scopes
from gaia_actors.improve.findings import Finding, Severity
from gaia_actors.improve.sources import GoSource, PythonSource, Source

MARKER_RULES: dict[str, tuple[Severity, int]] = {
    "TODO": (Severity.MEDIUM, 5),
    "FIXME": (Severity.HIGH, 7),
    "XXX": (Severity.MEDIUM, 5),
    "HACK": (Severity.MEDIUM, 6),
}
OTHER_MARKER_RULE = (Severity.MEDIUM, 5)  # a configured marker the table does not know


# --- detector bases -------------------------------------------------------------------


class Detector:
    """One kind of issue in one language. Subclasses override ``detect``."""

    name: ClassVar[str] = ""
    language: ClassVar[str] = "python"

    def detect(self, source: Source) -> Iterable[Finding]:
        """The findings in ``source``; the base finds nothing."""
        return ()

    def finding(
        self,
        source: Source,
        kind: str,
        line: int,
        text: str,
        *,
        scope: str = "",
        anchor: str | None = None,
    ) -> Finding:
        severity, priority = RULES.get(kind, OTHER_MARKER_RULE)
        return Finding(kind, source.path, line, text, severity, priority, self.name, scope, anchor)


class AstDetector(Detector):
    """A Python detector fed the nodes of ``node_types`` during the file's single AST walk.

    ``keywords``: the detector only runs when the text contains one of them (a cheap filter).
    ``expressions``: it needs nodes inside expressions (calls), which costs a walk of every
    node; otherwise only statements and ``except`` handlers are walked, several times faster.
    """

    node_types: ClassVar[tuple[type[ast.AST], ...]] = ()
    keywords: ClassVar[tuple[str, ...]] = ()
    expressions: ClassVar[bool] = False

    def check(self, node: ast.AST, scope: Scope, source: PythonSource) -> Iterable[Finding]:
        """Findings for one node; ``scope`` lists the enclosing functions and classes."""
        return ()


Scope = tuple[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, ...]
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

RULES: dict[str, tuple[Severity, int]] = {
    **{marker.lower(): rule for marker, rule in MARKER_RULES.items()},
    "panic": (Severity.CRITICAL, 9),
    "debugger": (Severity.HIGH, 8),
    "bare_except": (Severity.MEDIUM, 6),
    "not_implemented": (Severity.MEDIUM, 4),
    "long_function": (Severity.LOW, 3),
    "syntax_error": (Severity.CRITICAL, 10),
}


def qualname(scope: Scope) -> str:
    return ".".join(frame.name for frame in scope)


@functools.cache
def _marker_pattern(markers: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(re.escape(m) for m in markers) + r")\b")


def _marker_findings(
    detector: Detector, source: Source, comment: tuple[int, str, str], pattern: re.Pattern[str]
) -> Iterator[Finding]:
    """One finding per distinct marker in one comment line."""
    line, text, scope = comment
    seen: set[str] = set()
    for match in pattern.finditer(text):
        marker = match.group(1)
        if marker in seen:
            continue
        seen.add(marker)
        yield detector.finding(source, marker.lower(), line, text.strip(), scope=scope, anchor=text)


# --- Python detectors -----------------------------------------------------------------


class PythonMarkerDetector(Detector):
    """TODO / FIXME / XXX / HACK in comments only (never strings, docstrings, identifiers)."""

    name = "markers"

    def detect(self, source: Source) -> Iterable[Finding]:
        assert isinstance(source, PythonSource)
        text, markers = source.text, source.settings.markers
        if not source.has_markers:
            return []
        pattern = _marker_pattern(tuple(markers))
        lexed: pysource.LexResult | None = None
        if _lexer_is_exact(source):
            lexed = pysource.marker_comments(text, markers, pattern, source.utf8)
            comments: Sequence[pysource.Comment] = lexed.comments
        else:
            found, source.tokenize_problem = pysource.comments_via_tokenize(text)
            comments = [c for c in found if pattern.search(c.text)]
        if not comments:
            return []
        finder = scopes.scope_finder(text, lexed)
        findings: list[Finding] = []
        for comment in comments:
            where = (comment.line, comment.text, finder.scope(comment.offset, comment.col))
            findings.extend(_marker_findings(self, source, where, pattern))
        return findings


def _lexer_is_exact(source: PythonSource) -> bool:
    """May the lexer stand in for tokenize? In the markers-only mode, always (a file that does
    not tokenize is not looked at further there); in the full mode, for a file that parses:
    the lexer gives tokenize's comments for any file that tokenizes, and only a file that
    does not parse needs tokenize's own account of where it stops."""
    settings = source.settings
    if settings.markers_only:
        return True
    return not settings.tokenize_comments and source.tree is not None


class DebuggerDetector(AstDetector):
    """``breakpoint()``, ``pdb.set_trace()`` (also ipdb/pudb, ``pdb.Pdb().set_trace()``, and
    ``set_trace()`` imported from one of them)."""

    name = "debugger"
    node_types = (ast.Call,)
    keywords = ("breakpoint", "set_trace")
    expressions = True
    modules = frozenset({"pdb", "ipdb", "pudb"})

    def check(self, node: ast.AST, scope: Scope, source: PythonSource) -> Iterable[Finding]:
        assert isinstance(node, ast.Call)
        if self._is_debugger_call(node.func, source):
            text = source.line_text(node.lineno)
            yield self.finding(source, "debugger", node.lineno, text, scope=qualname(scope))

    def _is_debugger_call(self, func: ast.expr, source: PythonSource) -> bool:
        if isinstance(func, ast.Name):
            return func.id == "breakpoint" or (
                func.id == "set_trace" and self._imports_set_trace(source)
            )
        if not isinstance(func, ast.Attribute) or func.attr != "set_trace":
            return False
        owner = func.value
        if isinstance(owner, ast.Call):  # pdb.Pdb().set_trace()
            owner = owner.func.value if isinstance(owner.func, ast.Attribute) else owner.func
        return isinstance(owner, ast.Name) and owner.id in self.modules

    def _imports_set_trace(self, source: PythonSource) -> bool:
        tree = source.tree
        return tree is not None and any(
            isinstance(node, ast.ImportFrom)
            and node.module in self.modules
            and any(alias.name == "set_trace" for alias in node.names)
            for node in ast.walk(tree)
        )


class BareExceptDetector(AstDetector):
    """``except:`` with no exception type (it also catches KeyboardInterrupt and SystemExit)."""

    name = "bare_except"
    node_types = (ast.ExceptHandler,)
    keywords = ("except",)

    def check(self, node: ast.AST, scope: Scope, source: PythonSource) -> Iterable[Finding]:
        assert isinstance(node, ast.ExceptHandler)
        if node.type is None:
            text = source.line_text(node.lineno)
            yield self.finding(source, "bare_except", node.lineno, text, scope=qualname(scope))


class NotImplementedDetector(AstDetector):
    """``raise NotImplementedError`` outside abstract methods (the rule: module docstring)."""

    name = "not_implemented"
    node_types = (ast.Raise,)
    keywords = ("NotImplementedError",)
    abstract_decorators = frozenset(
        {"abstractmethod", "abstractproperty", "abstractclassmethod", "abstractstaticmethod"}
    )
    abstract_bases = frozenset({"ABC", "Protocol"})

    def check(self, node: ast.AST, scope: Scope, source: PythonSource) -> Iterable[Finding]:
        assert isinstance(node, ast.Raise)
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if not (isinstance(exc, ast.Name) and exc.id == "NotImplementedError"):
            return
        if self._is_abstract(scope):
            return
        text = source.line_text(node.lineno)
        yield self.finding(source, "not_implemented", node.lineno, text, scope=qualname(scope))

    def _is_abstract(self, scope: Scope) -> bool:
        functions = [i for i, frame in enumerate(scope) if not isinstance(frame, ast.ClassDef)]
        if not functions:
            return False
        index = functions[-1]
        function = scope[index]
        assert not isinstance(function, ast.ClassDef)
        if any(_last_name(d) in self.abstract_decorators for d in function.decorator_list):
            return True
        owner = scope[index - 1] if index > 0 else None
        return isinstance(owner, ast.ClassDef) and self._is_abstract_class(owner)

    def _is_abstract_class(self, node: ast.ClassDef) -> bool:
        if any(_last_name(base) in self.abstract_bases for base in node.bases):
            return True
        return any(
            kw.arg == "metaclass" and _last_name(kw.value) == "ABCMeta" for kw in node.keywords
        )


def _last_name(node: ast.expr) -> str:
    """``abc.abstractmethod`` -> "abstractmethod", ``Protocol[T]`` -> "Protocol"."""
    if isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


class LongFunctionDetector(AstDetector):
    """Functions longer than ``max_function_lines`` (``def`` line to last line, inclusive)."""

    name = "long_function"
    node_types = (ast.FunctionDef, ast.AsyncFunctionDef)

    def check(self, node: ast.AST, scope: Scope, source: PythonSource) -> Iterable[Finding]:
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        limit = source.settings.max_function_lines
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > limit:
            name = qualname((*scope, node))
            text = f"function {name} is {length} lines long (limit {limit})"
            yield self.finding(source, "long_function", node.lineno, text, scope=name, anchor="")


class SyntaxErrorDetector(Detector):
    """A file that does not parse (``ast``) or does not tokenize: a finding, never a crash."""

    name = "syntax_error"

    def detect(self, source: Source) -> Iterable[Finding]:
        assert isinstance(source, PythonSource)
        parsed = source.parsed
        if isinstance(parsed, SyntaxError):
            message = parsed.msg or str(parsed)
            return [self.finding(source, "syntax_error", parsed.lineno or 1, message)]
        problem = source.tokenize_problem
        if problem is not None:
            message = f"tokenize: {problem.message}"
            return [self.finding(source, "syntax_error", problem.line, message)]
        return []


# --- Go detectors ---------------------------------------------------------------------


class GoMarkerDetector(Detector):
    """``// TODO``, ``/* FIXME */`` and the other markers in Go comments only."""

    name = "go_markers"
    language = "go"

    def detect(self, source: Source) -> Iterable[Finding]:
        assert isinstance(source, GoSource)
        markers = source.settings.markers
        if not source.has_markers:
            return []
        pattern = _marker_pattern(tuple(markers))
        findings: list[Finding] = []
        for comment in source.scanned.comments:
            if pattern.search(comment.text):
                where = (comment.line, comment.text, comment.scope)
                findings.extend(_marker_findings(self, source, where, pattern))
        return findings


class GoPanicDetector(Detector):
    """``panic(`` calls in code (not comments or strings), outside ``_test.go`` files."""

    name = "panic"
    language = "go"

    def detect(self, source: Source) -> Iterable[Finding]:
        assert isinstance(source, GoSource)
        if source.is_test or "panic" not in source.text:
            return []
        lines = source.text.split("\n")
        return [
            self.finding(source, "panic", call.line, lines[call.line - 1].strip(), scope=call.scope)
            for call in source.scanned.panics
        ]


PYTHON_DETECTORS: tuple[Detector, ...] = (
    PythonMarkerDetector(),
    DebuggerDetector(),
    BareExceptDetector(),
    NotImplementedDetector(),
    LongFunctionDetector(),
    SyntaxErrorDetector(),  # last: it reports tokenize problems the marker detector met
)
GO_DETECTORS: tuple[Detector, ...] = (GoMarkerDetector(), GoPanicDetector())
MARKER_DETECTORS = frozenset({"markers", "go_markers"})

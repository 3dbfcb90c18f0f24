"""Detectors, and the analysis of one file or a batch of files.

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

The comment-markers-only mode (``AnalysisSettings(markers_only=True)``, what the benchmark
times) runs only the marker detectors, and cheaply: a file whose bytes contain none of the
markers is counted and checked to be UTF-8 text but never lexed; in the others, lexing stops
at the last marker that has a ``#`` before it on its line (a marker without one cannot be in a
comment), and a file with no such marker is not lexed at all. The full mode lexes the same
way the files that parse, and takes comments from ``tokenize`` for the files that do not (where
it stops is part of the ``syntax_error`` finding), or for every file with
``tokenize_comments=True`` (the reference the benchmark checks the lexer against); all give
the same findings and identities (``pysource``).

Detectors are small classes on two bases: ``Detector`` (``detect(source)``) and
``AstDetector`` (``check(node, scope, source)`` for the node types it names), so a file is parsed
once and its tree walked once, whatever the number of AST detectors.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from gaia_actors.improve import gosource, pysource
from gaia_actors.improve.files import (
    BINARY_PROBE,
    DEFAULT_MAX_BYTES,
    SkippedFile,
    SkipReason,
    check_text,
    decode,
    read_bytes,
)
from gaia_actors.improve.findings import Finding, Severity
from gaia_actors.improve.graph import ImportRef, extract_imports, statement_children

DEFAULT_MARKERS = ("TODO", "FIXME", "XXX", "HACK")
MARKER_RULES: dict[str, tuple[Severity, int]] = {
    "TODO": (Severity.MEDIUM, 5),
    "FIXME": (Severity.HIGH, 7),
    "XXX": (Severity.MEDIUM, 5),
    "HACK": (Severity.MEDIUM, 6),
}
OTHER_MARKER_RULE = (Severity.MEDIUM, 5)  # a configured marker the table does not know
LANGUAGES = {".py": "python", ".go": "go"}
# ast.parse reports invalid escape sequences as warnings (errors under -W error): parse under
# this pseudo file name and silence warnings attributed to it, without touching other filters.
_PARSE_FILENAME = "<gaia-analysis>"
_WARNING_FILTER = ("ignore", None, Warning, re.compile(re.escape(_PARSE_FILENAME)), 0)


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    """What the analysis looks for. Plain values, so it pickles to worker processes."""

    markers: tuple[str, ...] = DEFAULT_MARKERS
    markers_only: bool = False  # only comment markers, through the fast lexer
    max_function_lines: int = 60
    max_bytes: int = DEFAULT_MAX_BYTES
    detectors: frozenset[str] | None = None  # detector names to run; None runs all
    collect_imports: bool = True
    # Comments from tokenize in the full mode (the reference, ~100x slower than the lexer;
    # for checking the lexer). Otherwise tokenize only reads files that do not parse.
    tokenize_comments: bool = False

    def wants(self, name: str) -> bool:
        return self.detectors is None or name in self.detectors


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file's findings and statistics (or why it was skipped)."""

    path: str
    language: str
    lines: int = 0
    bytes: int = 0
    markers: int = 0  # comment-marker findings among ``findings``
    findings: tuple[Finding, ...] = ()
    imports: tuple[ImportRef, ...] = ()
    skipped: SkippedFile | None = None


# --- sources: a file's text plus what detectors share (parsed once, lazily) ------------


class PythonSource:
    """A Python file as the detectors see it."""

    language = "python"

    def __init__(
        self, path: str, text: str, settings: AnalysisSettings, has_markers: bool = True
    ) -> None:
        self.path = path
        self.text = text
        self.settings = settings
        self.has_markers = has_markers  # False: the bytes hold none of the markers
        self.tokenize_problem: pysource.TokenizeProblem | None = None

    @cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def line_text(self, line: int) -> str:
        return self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""

    @cached_property
    def parsed(self) -> ast.Module | SyntaxError:
        """The module's AST, or the SyntaxError that stops it."""
        if _WARNING_FILTER not in warnings.filters:
            warnings.filterwarnings("ignore", module=re.escape(_PARSE_FILENAME))
        try:
            return ast.parse(self.text, filename=_PARSE_FILENAME)
        except SyntaxError as exc:
            return exc
        except (ValueError, RecursionError, MemoryError) as exc:
            return SyntaxError(f"cannot parse: {type(exc).__name__}: {exc}")

    @property
    def tree(self) -> ast.Module | None:
        parsed = self.parsed
        return parsed if isinstance(parsed, ast.Module) else None


class GoSource:
    """A Go file as the detectors see it."""

    language = "go"

    def __init__(
        self, path: str, text: str, settings: AnalysisSettings, has_markers: bool = True
    ) -> None:
        self.path = path
        self.text = text
        self.settings = settings
        self.has_markers = has_markers

    @cached_property
    def scanned(self) -> gosource.GoScan:
        return gosource.scan(self.text)

    @property
    def is_test(self) -> bool:
        return self.path.endswith("_test.go")


Source = PythonSource | GoSource


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


def _marker_pattern(markers: Sequence[str]) -> re.Pattern[str]:
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
        pattern = _marker_pattern(markers)
        if _lexer_is_exact(source):
            last = pysource.last_hash_marker(text, markers)
            if last < 0:
                return []  # no marker has a "#" before it on its line: none is in a comment
            lexed = pysource.lex(text, stop=last, want=pattern)
            comments: Sequence[pysource.Comment] = lexed.comments
        else:
            found, source.tokenize_problem = pysource.comments_via_tokenize(text)
            comments, lexed = [c for c in found if pattern.search(c.text)], None
        if not comments:
            return []
        scopes = pysource.scope_finder(text, lexed)
        findings: list[Finding] = []
        for comment in comments:
            where = (comment.line, comment.text, scopes.scope(comment.offset, comment.col))
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
        pattern = _marker_pattern(markers)
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


# --- analysing files ------------------------------------------------------------------


def language_of(path: str) -> str:
    """ "python", "go" or "other", by file name suffix."""
    return LANGUAGES.get(os.path.splitext(path)[1], "other")


def analyse_file(path: str | Path, root: str | Path, settings: AnalysisSettings) -> FileResult:
    """Read one file (relative to ``root``, or absolute inside it) and run the detectors."""
    relpath = _relative(path, root)
    language = language_of(relpath)
    data = read_bytes(f"{root}/{relpath}", settings.max_bytes, relpath)
    if isinstance(data, SkippedFile):
        return FileResult(relpath, language, skipped=data)
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    encoding = _declared_encoding(data, relpath) if language == "python" else None
    if isinstance(encoding, SkippedFile):
        return FileResult(relpath, language, bytes=len(data), skipped=encoding)
    # The bytes prefilter: a file without any marker is never decoded, lexed or tokenized
    # for markers (only checked to be text, so both modes skip the same files).
    has_markers = _has_markers(data, settings.markers, encoding)
    if settings.markers_only and not has_markers:
        problem = check_text(data, relpath) if encoding is None else None
        if problem is None and encoding is not None:
            problem = _as_skip(_decode(data, relpath, encoding))
        if problem is not None:
            return FileResult(relpath, language, bytes=len(data), skipped=problem)
        return FileResult(relpath, language, lines, len(data))
    text = _decode(data, relpath, encoding)
    if isinstance(text, SkippedFile):
        return FileResult(relpath, language, bytes=len(data), skipped=text)
    findings, imports = _run_detectors(relpath, language, text, settings, has_markers)
    markers = sum(1 for f in findings if f.detector in MARKER_DETECTORS)
    return FileResult(relpath, language, lines, len(data), markers, findings, imports)


def _declared_encoding(data: bytes, relpath: str) -> str | SkippedFile | None:
    """A Python file's PEP 263 encoding (None: UTF-8), or why it cannot be decoded."""
    try:
        return pysource.declared_encoding(data)
    except SyntaxError as exc:  # an unknown encoding, or a BOM contradicting the declaration
        return SkippedFile(relpath, SkipReason.UNDECODABLE, exc.msg)


def _decode(data: bytes, relpath: str, encoding: str | None) -> str | SkippedFile:
    """The text of ``data``: UTF-8 (``decode``), or the declared ``encoding``."""
    if encoding is None:
        return decode(data, relpath)
    if data.find(b"\0", 0, BINARY_PROBE) >= 0:
        return SkippedFile(relpath, SkipReason.BINARY, "NUL byte in the first 8 KiB")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        detail = f"invalid {encoding} (declared) at byte {exc.start}"
        return SkippedFile(relpath, SkipReason.UNDECODABLE, detail)


def _as_skip(text: str | SkippedFile) -> SkippedFile | None:
    return text if isinstance(text, SkippedFile) else None


def _has_markers(data: bytes, markers: Sequence[str], encoding: str | None) -> bool:
    """Could the text hold a marker? Searched in the raw bytes when the encoding writes the
    markers as their ASCII bytes (UTF-8 and every ASCII-compatible encoding); bytes that
    decode to something else (a multi-byte character's trail bytes) only cost a lex that
    finds nothing. Other encodings (UTF-16, EBCDIC) are decoded first."""
    if encoding is None or _ascii_markers(encoding, tuple(markers)):
        return any(data.find(marker.encode()) >= 0 for marker in markers)
    text = _decode(data, "", encoding)
    return isinstance(text, SkippedFile) or any(marker in text for marker in markers)


@functools.cache
def _ascii_markers(encoding: str, markers: tuple[str, ...]) -> bool:
    try:
        return all(m.encode(encoding) == m.encode("ascii") for m in (*markers, "#", "\n"))
    except (UnicodeError, LookupError):
        return False


def _relative(path: str | Path, root: str | Path) -> str:
    """The posix path relative to ``root`` (plain string work: this runs once per file)."""
    text = os.fspath(path)
    if os.path.isabs(text):
        text = os.path.relpath(os.path.realpath(text), os.path.realpath(root))
    return text.replace(os.sep, "/") if os.sep != "/" else text


def _run_detectors(
    relpath: str, language: str, text: str, settings: AnalysisSettings, has_markers: bool
) -> tuple[tuple[Finding, ...], tuple[ImportRef, ...]]:
    source: Source
    if language == "python":
        source = PythonSource(relpath, text, settings, has_markers)
        detectors = PYTHON_DETECTORS
    elif language == "go":
        source = GoSource(relpath, text, settings, has_markers)
        detectors = GO_DETECTORS
    else:
        return (), ()
    chosen = [d for d in detectors if _selected(d, settings)]
    findings: list[Finding] = []
    for detector in chosen:
        findings.extend(detector.detect(source))
    imports: tuple[ImportRef, ...] = ()
    if isinstance(source, PythonSource) and not settings.markers_only:
        findings.extend(_walk_ast(source, [d for d in chosen if isinstance(d, AstDetector)]))
        if settings.collect_imports and source.tree is not None:
            imports = extract_imports(source.tree)
    findings.sort(key=lambda f: (f.line, f.type))
    return tuple(findings), imports


def _selected(detector: Detector, settings: AnalysisSettings) -> bool:
    if settings.markers_only and detector.name not in MARKER_DETECTORS:
        return False
    return settings.wants(detector.name)


def _walk_ast(source: PythonSource, detectors: Sequence[AstDetector]) -> list[Finding]:
    """One walk of the tree, each node handed to the detectors that asked for its type."""
    active = [d for d in detectors if not d.keywords or any(k in source.text for k in d.keywords)]
    tree = source.tree if active else None  # no detector wants it: the file is not parsed
    if tree is None:
        return []
    wanted: dict[type[ast.AST], list[AstDetector]] = {}
    for detector in active:
        for node_type in detector.node_types:
            wanted.setdefault(node_type, []).append(detector)
    walk = _scoped_nodes if any(d.expressions for d in active) else _scoped_statements
    findings: list[Finding] = []
    for node, scope in walk(tree):
        for detector in wanted.get(type(node), ()):
            findings.extend(detector.check(node, scope, source))
    return findings


def _scoped_nodes(tree: ast.Module) -> Iterator[tuple[ast.AST, Scope]]:
    """Every node, with the functions and classes around it."""
    stack: list[tuple[ast.AST, Scope]] = [(tree, ())]
    while stack:
        node, scope = stack.pop()
        yield node, scope
        inner = (*scope, node) if isinstance(node, FunctionNode | ast.ClassDef) else scope
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))


def _scoped_statements(tree: ast.Module) -> Iterator[tuple[ast.AST, Scope]]:
    """Statements and ``except`` handlers only, with the functions and classes around them."""
    stack: list[tuple[ast.AST, Scope]] = [(tree, ())]
    while stack:
        node, scope = stack.pop()
        yield node, scope
        inner = (*scope, node) if isinstance(node, FunctionNode | ast.ClassDef) else scope
        stack.extend((child, inner) for child in statement_children(node))


def analyse_batch(
    paths: Sequence[str | Path], root: str | Path, settings: AnalysisSettings
) -> tuple[FileResult, ...]:
    """``analyse_file`` for each path. A file that makes a detector fail is reported as
    skipped (reason unreadable, with the error) instead of losing the rest of the batch."""
    results: list[FileResult] = []
    for path in paths:
        try:
            results.append(analyse_file(path, root, settings))
        except Exception as exc:  # noqa: BLE001 - the batch boundary: one bad file, not all
            relpath = Path(path).as_posix()
            detail = f"analysis failed: {type(exc).__name__}: {exc}"
            skipped = SkippedFile(relpath, SkipReason.UNREADABLE, detail)
            results.append(FileResult(relpath, language_of(relpath), skipped=skipped))
    return tuple(results)


@dataclass(frozen=True, slots=True)
class AnalysisSummary:
    """Totals over many ``FileResult``s."""

    files: int
    lines: int
    bytes: int
    markers: int
    findings_by_type: dict[str, int]
    skipped_by_reason: dict[str, int]
    seconds: float


def summarise(results: Iterable[FileResult], seconds: float = 0.0) -> AnalysisSummary:
    """Count files, lines, bytes, markers, findings per type and skipped files per reason."""
    files = lines = size = markers = 0
    kinds: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for result in results:
        if result.skipped is not None:
            skipped[str(result.skipped.reason)] += 1
            continue
        files += 1
        lines += result.lines
        size += result.bytes
        markers += result.markers
        kinds.update(f.type for f in result.findings)
    return AnalysisSummary(files, lines, size, markers, dict(kinds), dict(skipped), seconds)

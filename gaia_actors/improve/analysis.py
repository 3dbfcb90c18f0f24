"""The analysis of one file or a batch of files: read, decode, run the detectors, count.

The comment-markers-only mode (``AnalysisSettings(markers_only=True)``, what the benchmark
times) runs only the marker detectors, and cheaply: it counts no lines, and a file whose bytes
contain none of the markers is only checked to be text, never decoded or lexed (and
``tally_batch`` only counts it, making no ``FileResult``); in the others, searched for the
markers once, only the lines that can hold a marker in a comment, or carry a string literal
on to the next line, are lexed (``pysource.marker_comments``), and a file whose markers all
lack a ``#`` before them on their line is not lexed at all. The full mode lexes the same way
the files that parse, and takes comments from ``tokenize`` for the files that do not (where it
stops is part of the ``syntax_error`` finding), or for every file with ``tokenize_comments=True``
(the reference the benchmark checks the lexer against); all give the same findings and
identities (``pysource``).
"""

from __future__ import annotations

import ast
import functools
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from gaia_actors.improve import bytesearch, pysource
from gaia_actors.improve.detectors import (
    GO_DETECTORS,
    MARKER_DETECTORS,
    PYTHON_DETECTORS,
    AstDetector,
    Detector,
    FunctionNode,
    Scope,
)
from gaia_actors.improve.files import (
    BINARY_PROBE,
    SkippedFile,
    SkipReason,
    check_text,
    decode,
    read_bytes,
)
from gaia_actors.improve.findings import Finding
from gaia_actors.improve.graph import ImportRef, extract_imports, statement_children
from gaia_actors.improve.sources import LANGUAGES, AnalysisSettings, GoSource, PythonSource, Source
from supervisors.records import record


@record
class FileResult:
    """One file's findings and statistics (or why it was skipped)."""

    path: str
    language: str
    lines: int = 0  # not counted in the markers-only mode (0 there)
    bytes: int = 0
    markers: int = 0  # comment-marker findings among ``findings``
    findings: tuple[Finding, ...] = ()
    imports: tuple[ImportRef, ...] = ()
    skipped: SkippedFile | None = None


def language_of(path: str) -> str:
    """ "python", "go" or "other", by file name suffix."""
    if path.endswith(".py"):  # nearly every file: spares the general suffix split
        return "python"
    return LANGUAGES.get(os.path.splitext(path)[1], "other")


def analyse_file(path: str | Path, root: str | Path, settings: AnalysisSettings) -> FileResult:
    """Read one file (relative to ``root``, or absolute inside it) and run the detectors."""
    relpath = _relative(path, root)
    found = _analyse(relpath, f"{root}/{relpath}", settings)
    return found if isinstance(found, FileResult) else _quiet_result(relpath, found)


def _analyse(relpath: str, path: str, settings: AnalysisSettings) -> FileResult | int:
    """``analyse_file``'s result, or only the size of a quiet file: in the markers-only mode,
    a text file whose bytes hold none of the markers, whose result would say nothing more
    (no findings, no lines counted)."""
    data = read_bytes(path, settings.max_bytes, relpath)
    if isinstance(data, SkippedFile):
        return FileResult(relpath, language_of(relpath), skipped=data)
    if not settings.markers_only:
        return _analyse_bytes(relpath, data, settings)
    starts = bytesearch.find_all(pysource.encoded_markers(tuple(settings.markers)), data)
    if not starts and _plain_text(data):
        return len(data)
    return _analyse_bytes(relpath, data, settings, starts)


def _plain_text(data: bytes) -> bool:
    """Is ``data`` plain ASCII text, with no NUL in the probe and no coding declaration to
    heed? Settled by C-speed checks alone; for other files, the general path decides."""
    return (
        data.isascii()
        and data.find(b"\0", 0, BINARY_PROBE) < 0
        and not pysource.may_declare_encoding(data)
    )


def _quiet_result(relpath: str, size: int) -> FileResult:
    return FileResult(relpath, language_of(relpath), bytes=size)


def _analyse_bytes(
    relpath: str, data: bytes, settings: AnalysisSettings, marker_starts: list[int] | None = None
) -> FileResult:
    """Decode ``data`` (a file's bytes) and run the detectors on its text. ``marker_starts``:
    where the markers are in ``data``, if the caller has searched."""
    language = language_of(relpath)
    encoding = _declared_encoding(data, relpath) if language == "python" else None
    if isinstance(encoding, SkippedFile):
        return FileResult(relpath, language, bytes=len(data), skipped=encoding)
    lines = 0 if settings.markers_only else _line_count(data)
    # The bytes prefilter: a file without any marker is never decoded, lexed or tokenized
    # for markers (only checked to be text, so both modes skip the same files).
    if encoding is not None:
        marker_starts = None  # offsets in bytes that are not the text's UTF-8
    if marker_starts is None:
        has_markers = _has_markers(data, settings.markers, encoding)
    else:
        has_markers = bool(marker_starts)
    if settings.markers_only and not has_markers:
        problem = _not_text(data, relpath, encoding)
        return FileResult(relpath, language, lines, len(data), skipped=problem)
    text = _decode(data, relpath, encoding)
    if isinstance(text, SkippedFile):
        return FileResult(relpath, language, bytes=len(data), skipped=text)
    # No declaration, no BOM either: the text's UTF-8 bytes are the file's.
    utf8 = pysource.Utf8(data, marker_starts) if encoding is None else None
    findings, imports = _run_detectors(
        relpath, language, text, settings, has_markers=has_markers, utf8=utf8
    )
    markers = sum(1 for f in findings if f.detector in MARKER_DETECTORS)
    return FileResult(relpath, language, lines, len(data), markers, findings, imports)


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


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


def _not_text(data: bytes, relpath: str, encoding: str | None) -> SkippedFile | None:
    """Why ``data`` is not text in ``encoding`` (None: UTF-8), or None; builds no string for
    ASCII bytes read as UTF-8 (most source files)."""
    if encoding is None:
        return check_text(data, relpath)
    text = _decode(data, relpath, encoding)
    return text if isinstance(text, SkippedFile) else None


def _has_markers(data: bytes, markers: Sequence[str], encoding: str | None) -> bool:
    """Could the text hold a marker? Searched in the raw bytes when the encoding writes the
    markers as their ASCII bytes (UTF-8 and every ASCII-compatible encoding); bytes that
    decode to something else (a multi-byte character's trail bytes) only cost a lex that
    finds nothing. Other encodings (UTF-16, EBCDIC) are decoded first."""
    if encoding is None or _ascii_markers(encoding, tuple(markers)):
        return bytesearch.contains_any(pysource.encoded_markers(tuple(markers)), data)
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
    relpath: str,
    language: str,
    text: str,
    settings: AnalysisSettings,
    *,
    has_markers: bool,
    utf8: pysource.Utf8 | None = None,
) -> tuple[tuple[Finding, ...], tuple[ImportRef, ...]]:
    source: Source
    if language == "python":
        source = PythonSource(relpath, text, settings, has_markers, utf8)
        detectors = PYTHON_DETECTORS
    elif language == "go":
        source = GoSource(relpath, text, settings, has_markers)
        detectors = GO_DETECTORS
    else:
        return (), ()
    chosen = _chosen(detectors, settings)
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


@functools.cache
def _chosen(detectors: tuple[Detector, ...], settings: AnalysisSettings) -> tuple[Detector, ...]:
    """The detectors ``settings`` select (asked once per file)."""
    return tuple(d for d in detectors if _selected(d, settings))


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
    return tuple(
        found if isinstance(found, FileResult) else _quiet_result(relpath, found)
        for relpath, found in _analyse_each(paths, root, settings)
    )


@record
class BatchTally:
    """A batch analysed with its quiet files only counted (see ``tally_batch``)."""

    results: tuple[FileResult, ...]  # the files with something to say, or skipped
    quiet_files: int
    quiet_bytes: int

    @property
    def files(self) -> int:
        """The files analysed (not skipped)."""
        return self.quiet_files + sum(1 for r in self.results if r.skipped is None)

    @property
    def bytes(self) -> int:
        """Their bytes."""
        return self.quiet_bytes + sum(r.bytes for r in self.results if r.skipped is None)


def tally_batch(
    paths: Sequence[str | Path], root: str | Path, settings: AnalysisSettings
) -> BatchTally:
    """``analyse_batch``, but a quiet file (in the markers-only mode, a text file without any
    of the markers: most files) only adds to two counts instead of costing a ``FileResult``
    that would say no more than its path and size."""
    results: list[FileResult] = []
    files = size = 0
    for _, found in _analyse_each(paths, root, settings):
        if isinstance(found, FileResult):
            results.append(found)
        else:
            files += 1
            size += found
    return BatchTally(tuple(results), files, size)


def _analyse_each(
    paths: Sequence[str | Path], root: str | Path, settings: AnalysisSettings
) -> Iterator[tuple[str, FileResult | int]]:
    """Each path relative to ``root`` and what ``_analyse`` makes of it."""
    for path in paths:
        try:
            relpath = _relative(path, root)
            yield relpath, _analyse(relpath, f"{root}/{relpath}", settings)
        except Exception as exc:  # noqa: BLE001 - the batch boundary: one bad file, not all
            relpath = Path(path).as_posix()
            detail = f"analysis failed: {type(exc).__name__}: {exc}"
            skipped = SkippedFile(relpath, SkipReason.UNREADABLE, detail)
            yield relpath, FileResult(relpath, language_of(relpath), skipped=skipped)


@record
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

"""What the analysis reads: its settings, and a file's text plus what detectors share (parsed
once, lazily).
"""

from __future__ import annotations

import ast
import re
import warnings
from functools import cached_property
from typing import ClassVar

from gaia_actors.improve import gosource, pysource
from gaia_actors.improve.files import DEFAULT_MAX_BYTES
from supervisors.records import record

DEFAULT_MARKERS = ("TODO", "FIXME", "XXX", "HACK")
LANGUAGES = {".py": "python", ".go": "go"}
# ast.parse reports invalid escape sequences as warnings (errors under -W error): parse under
# this pseudo file name and silence warnings attributed to it, without touching other filters.
_PARSE_FILENAME = "<gaia-analysis>"
_WARNING_FILTER = ("ignore", None, Warning, re.compile(re.escape(_PARSE_FILENAME)), 0)


@record
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


class FileSource:
    """A file's text and the analysis settings; each language's subclass adds what its
    detectors share."""

    language: ClassVar[str] = ""

    def __init__(
        self, path: str, text: str, settings: AnalysisSettings, has_markers: bool = True
    ) -> None:
        self.path = path
        self.text = text
        self.settings = settings
        self.has_markers = has_markers  # False: the bytes hold none of the markers


class PythonSource(FileSource):
    """A Python file as the detectors see it."""

    language = "python"

    def __init__(
        self,
        path: str,
        text: str,
        settings: AnalysisSettings,
        has_markers: bool = True,
        utf8: pysource.Utf8 | None = None,
    ) -> None:
        super().__init__(path, text, settings, has_markers)
        self.tokenize_problem: pysource.TokenizeProblem | None = None
        self.utf8 = utf8  # the text's UTF-8 bytes, when the reader has them (None: not known)

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


class GoSource(FileSource):
    """A Go file as the detectors see it."""

    language = "go"

    @cached_property
    def scanned(self) -> gosource.GoScan:
        return gosource.scan(self.text)

    @property
    def is_test(self) -> bool:
        return self.path.endswith("_test.go")


Source = PythonSource | GoSource

"""The Prometheus text exposition format, parsed: samples out of a scraped body, within bounds.

Hostile exposition text never stops a scrape, and its cost is bounded: the body is read line
by line with a linear-time pattern for the text format; a malformed line is counted and
skipped, a sample with too many or too long labels is dropped and counted, NaN and infinite
values are counted and kept out of the store (SQLite cannot hold NaN in a NOT NULL column).
Reading stops at ``max_samples`` kept samples (``truncated``) or after ``max_parse_cpu``
seconds of CPU (``over_budget``), the lines left counted, so neither a huge valid body nor a
huge malformed one costs more than the budget and the samples kept.
"""

from __future__ import annotations

import fnmatch
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gaia_actors.settings import MetricsSettings
from supervisors.records import record

# The Prometheus text exposition format, one sample line: name, optional labels, value,
# optional timestamp. Every alternative is disjoint from its neighbour, so a hostile line
# costs linear time.
_SAMPLE_LINE = re.compile(
    rb"[ \t]*([a-zA-Z_:][a-zA-Z0-9_:]*)"
    rb'(\{(?:[^"}]|"(?:[^"\\\n]|\\.)*")*\})?'
    rb"[ \t]+([^ \t]+)(?:[ \t]+-?[0-9]+)?[ \t]*\r?"
)
_LABEL = re.compile(rb'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\\n]|\\.)*)"[ \t]*,?')
_ESCAPES = {b"\\\\": "\\", b'\\"': '"', b"\\n": "\n"}
_ESCAPE = re.compile(rb'\\[\\"n]')
_VALUE = re.compile(
    rb"[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|Inf|inf|NaN|nan)"
)
_MAX_LINE = 64 * 1024  # longer lines are errors without a parse
_BUDGET_EVERY = 256  # lines between looks at the CPU clock


@record
class Limits:
    """Bounds on what one scrape may store and cost."""

    max_samples: int = 10_000
    max_labels: int = 32
    max_label_bytes: int = 4096
    max_parse_cpu: float = 0.5  # seconds of this thread's CPU for one body

    @classmethod
    def of(cls, cfg: MetricsSettings) -> Limits:
        return cls(cfg.max_samples, cfg.max_labels, cfg.max_label_bytes, cfg.max_parse_cpu)


@record
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@record
class ParseReport:
    """The samples of one body and what was dropped of the rest of it."""

    samples: tuple[Sample, ...]
    parse_errors: int = 0  # malformed lines
    dropped_labels: int = 0  # label sets over the bounds
    nonfinite: int = 0  # NaN or infinite values
    truncated: int = 0  # lines not read: the sample limit was reached
    over_budget: int = 0  # lines not read: the CPU budget ran out
    first_error: str = ""

    @property
    def problems(self) -> int:
        return (
            self.parse_errors + self.dropped_labels + self.nonfinite + self.truncated
            + self.over_budget
        )  # fmt: skip

    @property
    def prometheus(self) -> bool:
        """Whether the body read as Prometheus text at all (some sample, or nothing wrong)."""
        return bool(self.samples) or self.parse_errors == 0


@dataclass
class _Tally:
    samples: list[Sample] = field(default_factory=list)
    parse_errors: int = 0
    dropped_labels: int = 0
    nonfinite: int = 0
    truncated: int = 0
    over_budget: int = 0
    first_error: str = ""

    def error(self, problem: str | Callable[[], str]) -> None:
        """Count a malformed line; ``problem`` (or a callable making it, so that a body of
        bad lines formats one message, not one per line) describes the first."""
        self.parse_errors += 1
        if not self.first_error:
            self.first_error = (problem if isinstance(problem, str) else problem())[:200]

    def report(self) -> ParseReport:
        return ParseReport(
            tuple(self.samples),
            self.parse_errors,
            self.dropped_labels,
            self.nonfinite,
            self.truncated,
            self.over_budget,
            self.first_error,
        )


def parse_exposition(body: bytes | str, limits: Limits) -> ParseReport:
    """Samples of a Prometheus text body, read line by line; never raises.

    A malformed line is counted and skipped. Reading stops, and the lines left are counted,
    when ``max_samples`` samples are kept (``truncated``) or when this thread has spent
    ``max_parse_cpu`` seconds on the body (``over_budget``), so a hostile body costs bounded
    CPU and no more memory than its samples.
    """
    data = body.encode() if isinstance(body, str) else body
    tally = _Tally()
    budget_end = time.thread_time() + limits.max_parse_cpu
    pos, lines = 0, 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        if len(tally.samples) >= limits.max_samples:
            tally.truncated = _sample_lines(data, pos)
            break
        lines += 1
        if lines % _BUDGET_EVERY == 0 and time.thread_time() > budget_end:
            tally.over_budget = _sample_lines(data, pos)
            break
        _parse_line(data[pos:end], limits, tally)
        pos = end + 1
    return tally.report()


def _sample_lines(data: bytes, pos: int) -> int:
    """About how many sample lines are left from ``pos`` (blank lines and comments that
    start their line are not counted), without splitting the rest."""
    newlines = data.count(b"\n", pos)
    skipped = data.count(b"\n#", pos - 1) + data.count(b"\n\n", pos - 1)
    return max(0, newlines + 1 - skipped - data.endswith(b"\n"))


def _parse_line(line: bytes, limits: Limits, tally: _Tally) -> None:
    stripped = line.strip()
    if not stripped or stripped.startswith(b"#"):
        return
    if len(line) > _MAX_LINE:
        tally.error(f"line of {len(line)} bytes exceeds {_MAX_LINE}")
        return
    match = _SAMPLE_LINE.fullmatch(line)
    if match is None or _VALUE.fullmatch(match[3]) is None:
        tally.error(lambda: f"not a sample line: {stripped[:80]!r}")
        return
    labels = _labels(match[2], limits) if match[2] else ()
    if labels is None:
        tally.dropped_labels += 1
        return
    value = float(match[3])
    if not math.isfinite(value):
        tally.nonfinite += 1
        return
    tally.samples.append(Sample(match[1].decode("ascii"), labels, value))


def _labels(text: bytes, limits: Limits) -> tuple[tuple[str, str], ...] | None:
    """The label pairs of ``{...}``, sorted; None when over the bounds."""
    inner, pos = text[1:-1], 0
    pairs: list[tuple[str, str]] = []
    if len(inner) > 2 * limits.max_label_bytes + 4 * limits.max_labels:
        return None
    while pos < len(inner) and inner[pos:].strip():
        match = _LABEL.match(inner, pos)
        if match is None or len(pairs) >= limits.max_labels:
            return None
        value = _ESCAPE.sub(lambda m: _ESCAPES[m[0]].encode(), match[2])
        pairs.append((match[1].decode("ascii"), value.decode("utf-8", "replace")))
        pos = match.end()
    if sum(len(k) + len(v) for k, v in pairs) > limits.max_label_bytes:
        return None
    return tuple(sorted(pairs))


def total(samples: Iterable[Sample], pattern: str) -> float | None:
    """The sum of the samples whose name matches the glob ``pattern``; None when none does."""
    values = [s.value for s in samples if pattern and fnmatch.fnmatchcase(s.name, pattern)]
    return math.fsum(values) if values else None

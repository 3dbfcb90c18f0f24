"""Findings: one detected issue each, with an identity that survives line shifts.

A finding's ``identity`` is a hash of (type, file, enclosing scope, normalised anchor text). The
line number is deliberately left out, so a TODO that moves down ten lines because code was
added above it is the same finding in the next cycle; editing its text makes it a new one.
Two identical findings in the same scope share an identity: cycle comparison therefore counts
identities as a multiset (see ``compare``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import field
from enum import StrEnum
from typing import Any

from supervisors.records import record


class Severity(StrEnum):
    """How bad a finding is, as in the original tool."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """3 for critical down to 0 for low, for sorting."""
        return _RANKS[self]


_RANKS = {Severity.CRITICAL: 3, Severity.HIGH: 2, Severity.MEDIUM: 1, Severity.LOW: 0}

# Comment leaders and block-comment ends are not part of what a comment says.
_LEADER = re.compile(r"\s*(?:#+|//+|/\*+|\*+)\s*")


def normalise_text(text: str) -> str:
    """Strip a comment leader (``#``, ``//``, ``/*``, ``*``) and a block comment's end (``*/``),
    and collapse whitespace, so reformatting keeps the identity. String methods, not one
    regular expression for both ends: that was tried at every position of the text (8 us a
    finding, most of making one)."""
    leader = _LEADER.match(text)
    body = text[leader.end() :] if leader else text
    trimmed = body.rstrip()
    if trimmed.endswith("*/"):
        body = trimmed[:-1].rstrip("*")
    return " ".join(body.split())


def make_identity(kind: str, file: str, scope: str, anchor: str) -> str:
    """A 16-hex-digit key for (type, file, scope, normalised anchor)."""
    key = "\0".join((kind, file, scope, normalise_text(anchor)))
    return hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


@record
class Finding:
    """One issue: where it is, what it says, how bad it is, and who found it.

    ``scope`` is the enclosing function or class (``Class.method``; "" at module level).
    ``anchor`` is the part of the text that identifies the finding when ``text`` carries
    changing numbers (a long function's length, a coverage percentage); None means ``text``.
    """

    type: str
    file: str
    line: int
    text: str
    severity: Severity
    priority: int
    detector: str
    scope: str = ""
    anchor: str | None = None
    identity: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.priority <= 10:
            raise ValueError(f"priority {self.priority} of {self.type} in {self.file} not in 0-10")
        anchor = self.text if self.anchor is None else self.anchor
        object.__setattr__(
            self, "identity", make_identity(self.type, self.file, self.scope, anchor)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (what the store and ``--json`` output hold)."""
        return {
            "type": self.type,
            "file": self.file,
            "line": self.line,
            "text": self.text,
            "severity": str(self.severity),
            "priority": self.priority,
            "detector": self.detector,
            "scope": self.scope,
            "anchor": self.anchor,
            "identity": self.identity,
        }


def sort_key(finding: Finding) -> tuple[int, int, str, int]:
    """Most severe first, then highest priority, then by place."""
    return (-finding.severity.rank, -finding.priority, finding.file, finding.line)

"""Which records ``tail`` keeps: the `Filter` of ``--level``, ``--actor``, ``--event``,
``--env``, ``--since`` and ``--grep``, which rules most lines out from their text before any
JSON is parsed."""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from datetime import datetime
from typing import Any

from gaia_actors.console.tail.records import (
    LEVEL_ALIASES,
    LEVEL_RANK,
    LEVELS,
    Entry,
    level_rank,
    parse_since,
    record_time,
)
from gaia_actors.errors import UsageError
from supervisors.records import record


@record
class Filter:
    """Which records to show: every condition given must hold; the empty filter shows all.

    A malformed line carries no fields, so it passes only a filter without field conditions
    (``--grep`` alone is then matched against its text).
    """

    envs: frozenset[str] = frozenset()
    actors: tuple[str, ...] = ()  # globs
    level: str | None = None  # minimum, one of LEVELS
    events: tuple[str, ...] = ()  # globs
    since: datetime | None = None
    grep: re.Pattern[str] | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, now: datetime) -> Filter:
        """Build from parsed `add_arguments` options; raises UsageError naming the argument."""
        return cls(
            envs=frozenset(args.env or ()),
            actors=tuple(args.actor or ()),
            level=_level_arg(args.level),
            events=tuple(args.event or ()),
            since=_since_arg(args.since, now),
            grep=_grep_arg(args.grep),
        )

    # Derived once in __post_init__: a filter runs on every line of a possibly huge log.
    _checks: tuple[Callable[[Mapping[str, Any]], bool], ...] = field(
        init=False, repr=False, compare=False
    )
    _needles: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)
    _level_words: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        conditions = (
            (self.envs, self._env_ok),
            (self.actors, self._actor_ok),
            (self.level, self._level_ok),
            (self.events, self._event_ok),
            (self.since, self._since_ok),
        )
        checks = tuple(check for given, check in conditions if given)
        groups = (self.envs, map(_literal_part, self.events), map(_literal_part, self.actors))
        needles = tuple(group for group in map(tuple, groups) if group)
        object.__setattr__(self, "_checks", checks)
        object.__setattr__(self, "_needles", needles)
        object.__setattr__(self, "_level_words", _level_words(self.level))

    def rules_out(self, raw: str) -> bool:
        """True when the line cannot match, judged from its text alone (no JSON parse).

        A JSON line without escapes holds every string value verbatim, so a named environment,
        the literal part of an event or actor glob, an accepted level name and a ``--grep``
        match must all appear in it.
        """
        if "\\" in raw:
            return False
        if self.grep is not None and not self.grep.search(raw):
            return True
        if self._level_words is not None and not self._level_words.search(raw):
            return True
        return not all(any(needle in raw for needle in group) for group in self._needles)

    def matches(self, entry: Entry) -> bool:
        if entry.record is None:
            return not self._checks and self._grep_ok(entry.raw, None)
        record = entry.record
        return all(check(record) for check in self._checks) and self._grep_ok(entry.raw, record)

    def _env_ok(self, record: Mapping[str, Any]) -> bool:
        env = record.get("env")
        return isinstance(env, str) and env in self.envs

    def _actor_ok(self, record: Mapping[str, Any]) -> bool:
        return _glob_any(record.get("actor"), self.actors)

    def _event_ok(self, record: Mapping[str, Any]) -> bool:
        return _glob_any(record.get("event"), self.events)

    def _level_ok(self, record: Mapping[str, Any]) -> bool:
        rank = level_rank(record.get("level"))
        return rank is not None and self.level is not None and rank >= LEVEL_RANK[self.level]

    def _since_ok(self, record: Mapping[str, Any]) -> bool:
        moment = record_time(record)
        return moment is not None and self.since is not None and moment >= self.since

    def _grep_ok(self, raw: str, record: Mapping[str, Any] | None) -> bool:
        if self.grep is None or self.grep.search(raw):
            return True
        # A JSON line spells quotes, newlines and non-ASCII as escapes: look at the decoded text.
        if record is None or "\\" not in raw:
            return False
        return self.grep.search(_decoded_text(record)) is not None


def _decoded_text(record: Mapping[str, Any]) -> str:
    """The record as ``key=value`` text with JSON escapes undone (strings verbatim)."""
    return " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for key, value in record.items()
    )


def _level_words(level: str | None) -> re.Pattern[str] | None:
    """A pattern for the quoted level names (any case, aliases too) at or above ``level``."""
    if level is None:
        return None
    names = [n for n in (*LEVELS, *LEVEL_ALIASES) if (level_rank(n) or 0) >= LEVEL_RANK[level]]
    return re.compile("|".join(f'"{name}"' for name in names), re.IGNORECASE)


@functools.lru_cache(maxsize=64)
def _literal_part(pattern: str) -> str:
    """The longest run of a glob without wildcards: every match contains it."""
    # A set may start with `]` (`[]ab]`, `[!]ab]`); an unclosed `[` swallows the rest: both
    # only shorten the literal, which keeps the rule-out safe.
    return max(re.split(r"[*?]|\[!?\]?[^\]]*\]?", pattern), key=len)


def _glob_any(value: object, patterns: Sequence[str]) -> bool:
    return isinstance(value, str) and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _level_arg(text: str | None) -> str | None:
    if text is None:
        return None
    rank = level_rank(text)
    if rank is None:
        raise UsageError(
            "tail", f"unknown level {text!r} (expected one of {', '.join(LEVELS)})", "--level"
        )
    return LEVELS[rank]


def _since_arg(text: str | None, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_since(text, now)
    except ValueError as error:
        raise UsageError("tail", str(error), "--since") from error


def _grep_arg(text: str | None) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as error:
        raise UsageError("tail", f"bad regular expression {text!r}: {error}", "--grep") from error

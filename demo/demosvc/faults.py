"""Fault knobs, so every recovery path of the orchestrator can be shown on a real process.

Sources, merged at start (the env var wins per knob):
  * a file named ``FAULT`` in the working directory (a test builds a crashing release variant
    by adding it to a copy of ``demo/``);
  * the ``FAULT`` environment variable.
Both hold a list separated by commas or whitespace: ``crash_on_start``, ``unhealthy``,
``hang``, ``slow=<seconds>``, ``exit_after=<seconds>``.

At run time ``POST /admin/fault`` takes a JSON object with the knobs to change (see
``apply_fault_update``); ``crash_on_start`` is start-only.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

FAULT_FILE_NAME = "FAULT"
FLAG_FAULTS = ("crash_on_start", "unhealthy", "hang")
SECONDS_FAULTS = ("slow", "exit_after")
FAULT_NAMES = FLAG_FAULTS + SECONDS_FAULTS
RUNTIME_FAULTS = ("unhealthy", "hang", "slow", "exit_after")

FaultValue = bool | float | None


class FaultError(ValueError):
    """An unknown fault name or a bad value for one."""

    def __init__(self, fault: str, problem: str, source: str = "") -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}fault {fault!r}: {problem}")
        self.fault = fault


@dataclass(frozen=True, slots=True)
class Faults:
    """The knobs in force. Zero values mean "no fault"."""

    crash_on_start: bool = False
    unhealthy: bool = False
    hang: bool = False
    slow: float = 0.0
    exit_after: float | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def active(self) -> list[str]:
        """Names of the knobs that are on, for logs."""
        return [name for name, value in asdict(self).items() if value]


def parse_fault_spec(text: str, source: str = "FAULT") -> Faults:
    """Parse ``"crash_on_start, slow=0.5"``; raise FaultError naming the bad token."""
    return Faults(**_parse_tokens(text, source))  # type: ignore[arg-type]  # parser checks types


def load_start_faults(environ: Mapping[str, str], cwd: Path) -> Faults:
    """Merge the ``FAULT`` file in ``cwd`` and the ``FAULT`` env var (env wins per knob)."""
    merged: dict[str, FaultValue] = {}
    fault_file = cwd / FAULT_FILE_NAME
    if fault_file.is_file():
        merged.update(_parse_tokens(fault_file.read_text(encoding="utf-8"), str(fault_file)))
    merged.update(_parse_tokens(environ.get("FAULT", ""), "FAULT env var"))
    return Faults(**merged)  # type: ignore[arg-type]  # keys and types checked by the parser


def _parse_tokens(text: str, source: str) -> dict[str, FaultValue]:
    knobs: dict[str, FaultValue] = {}
    for token in re.split(r"[\s,]+", text.strip()):
        if token:
            name, _, raw = token.partition("=")
            knobs[name] = _parse_token_value(name, raw if "=" in token else None, source)
    return knobs


def _parse_token_value(name: str, raw: str | None, source: str) -> FaultValue:
    if name in FLAG_FAULTS:
        if raw is not None:
            raise FaultError(name, "is a flag and takes no value", source)
        return True
    if name in SECONDS_FAULTS:
        if raw is None:
            raise FaultError(name, "needs a value in seconds, e.g. slow=0.5", source)
        return _seconds(name, _float(name, raw, source), source)
    raise FaultError(name, f"unknown fault; known: {', '.join(FAULT_NAMES)}", source)


def _float(name: str, raw: str, source: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise FaultError(name, f"expected seconds as a number, got {raw!r}", source) from None


def _seconds(name: str, value: float, source: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise FaultError(name, f"expected a finite number of seconds >= 0, got {value}", source)
    if name == "exit_after" and value == 0:
        raise FaultError(name, "must be > 0 seconds", source)
    return value


def apply_fault_update(current: Faults, update: object) -> Faults:
    """Apply an admin JSON object such as ``{"unhealthy": true, "slow": 0.5}`` to ``current``.

    Flags take booleans; ``slow`` takes seconds (0 or null turns it off); ``exit_after`` takes
    seconds from now (0 or null cancels it).
    """
    if not isinstance(update, dict):
        raise FaultError("body", "expected a JSON object of fault knobs")
    changes: dict[str, FaultValue] = {}
    for name, value in update.items():
        changes[name] = _runtime_value(str(name), value)
    return replace(current, **changes)  # type: ignore[arg-type]  # checked above


def _runtime_value(name: str, value: object) -> FaultValue:
    if name == "crash_on_start":
        raise FaultError(name, "only applies at start; set it in the FAULT env var or file")
    if name not in RUNTIME_FAULTS:
        raise FaultError(name, f"unknown fault; known at run time: {', '.join(RUNTIME_FAULTS)}")
    if name in FLAG_FAULTS:
        if not isinstance(value, bool):
            raise FaultError(name, f"expected true or false, got {value!r}")
        return value
    if value is None or value == 0:
        return 0.0 if name == "slow" else None
    # bool is an int subclass; reject it so {"slow": true} is not one second.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(name, f"expected a number of seconds, got {value!r}")
    return _seconds(name, float(value), "")


class FaultState:
    """The live faults, read by every request thread and changed by the admin endpoint.

    It also owns the ``exit_after`` timer and wakes requests parked by ``hang`` or ``slow``
    when the faults change or the service shuts down.
    """

    def __init__(self, initial: Faults, on_exit_after: Callable[[float], None]) -> None:
        self._faults = Faults()
        self._closed = False
        self._changed = threading.Condition()
        self._on_exit_after = on_exit_after
        self._timer: threading.Timer | None = None
        with self._changed:
            self._put(initial, rearm_exit=True)

    def current(self) -> Faults:
        with self._changed:
            return self._faults

    def update(self, changes: object) -> Faults:
        """Apply an admin JSON object (see ``apply_fault_update``); raise FaultError if bad."""
        with self._changed:
            faults = apply_fault_update(self._faults, changes)
            # Sending exit_after again restarts the countdown, even with the same value.
            rearm = isinstance(changes, dict) and "exit_after" in changes
            return self._put(faults, rearm_exit=rearm)

    def clear(self) -> Faults:
        """Turn every knob off and cancel a pending ``exit_after``."""
        with self._changed:
            return self._put(Faults(), rearm_exit=True)

    def _put(self, faults: Faults, *, rearm_exit: bool) -> Faults:
        self._faults = faults
        if rearm_exit:
            self._arm_exit_timer(faults.exit_after)
        self._changed.notify_all()
        return faults

    def _arm_exit_timer(self, seconds: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if seconds is not None and not self._closed:
            self._timer = threading.Timer(seconds, self._on_exit_after, args=(seconds,))
            self._timer.daemon = True
            self._timer.start()

    def wait_while_hung(self) -> None:
        """Block while ``hang`` is on; return when it is cleared or the service shuts down."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or not self._faults.hang)

    def delay(self) -> None:
        """Wait ``slow`` seconds; cut short by shutdown or by ``slow`` being lowered."""
        with self._changed:
            seconds = self._faults.slow
            if seconds > 0:
                self._changed.wait_for(
                    lambda: self._closed or self._faults.slow < seconds, timeout=seconds
                )

    def close(self) -> None:
        """Release parked requests and cancel the exit timer (shutdown)."""
        with self._changed:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            self._changed.notify_all()

"""Exponential restart backoff with jitter (Akka's formula)."""

from __future__ import annotations

import random

from supervisors.records import record


@record
class Backoff:
    """Delay before the n-th consecutive restart of a child.

    The first restart (n == 0) is immediate so a single crash costs no waiting; later ones
    wait ``initial * 2**(n-1)`` capped at ``maximum``, stretched by up to ``jitter`` so that
    children failing together do not restart in lockstep. A child that ran for
    ``stable_after`` seconds before failing starts again at n == 0.
    """

    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.2
    stable_after: float = 10.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial:
            raise ValueError(f"backoff needs 0 <= initial <= maximum, got {self}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter must be within 0..1, got {self.jitter}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before restart number ``attempt`` (0-based) of a failure run."""
        if attempt <= 0:
            return 0.0
        base = min(self.maximum, self.initial * 2 ** (attempt - 1))
        spread = (rng or random).random() * self.jitter
        return float(min(self.maximum, base * (1 + spread)))

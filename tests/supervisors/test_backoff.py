"""Backoff.delay: immediate first restart, exponential growth, cap, seeded jitter."""

from __future__ import annotations

import random

import pytest

from supervisors import Backoff


def test_first_restart_is_immediate() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, jitter=0.5)
    assert backoff.delay(0, random.Random(1)) == 0.0
    assert backoff.delay(-3, random.Random(1)) == 0.0


def test_delays_double_without_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=100.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_delays_are_capped_at_maximum() -> None:
    backoff = Backoff(initial=1.0, maximum=5.0, jitter=0.5)
    rng = random.Random(3)
    delays = [backoff.delay(n, rng) for n in range(1, 40)]
    assert max(delays) <= 5.0
    assert delays[-1] == 5.0


def test_jitter_stretches_within_bounds_and_varies() -> None:
    backoff = Backoff(initial=1.0, maximum=1000.0, jitter=0.25)
    rng = random.Random(11)
    delays = [backoff.delay(3, rng) for _ in range(200)]
    assert all(4.0 <= d <= 5.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # really spread, not a constant


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    backoff = Backoff(initial=0.1, maximum=10.0, jitter=0.5)
    first = [backoff.delay(n, random.Random(42)) for n in range(6)]
    second = [backoff.delay(n, random.Random(42)) for n in range(6)]
    other = [backoff.delay(n, random.Random(43)) for n in range(6)]
    assert first == second
    assert first != other


@pytest.mark.parametrize(
    ("initial", "maximum", "jitter"),
    [(-1.0, 1.0, 0.1), (2.0, 1.0, 0.1), (0.1, 1.0, 1.5), (0.1, 1.0, -0.1)],
)
def test_invalid_settings_are_refused(initial: float, maximum: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial=initial, maximum=maximum, jitter=jitter)

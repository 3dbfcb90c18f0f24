"""Progress lines: the analysis bar at each tenth, and again every few seconds when slow."""

from __future__ import annotations

from gaia_actors.improve.progress import Progress, progress_bar


def test_progress_draws_the_analysis_as_a_bar_at_each_tenth() -> None:
    said: list[str] = []
    now = [0.0]
    progress = Progress(lambda update: said.append(update["message"]), clock=lambda: now[0])
    progress.update({"event": "phase.started", "phase": "analyse"})
    for done in range(1, 101):
        progress.update({"event": "analysis.progress", "files_done": done, "files_total": 100})
    bars = [line for line in said if line.startswith("analyse [")]
    assert len(bars) == 11  # 1% (the first), then 10%, 20% ... 100%
    assert bars[-1] == "analyse " + progress_bar(100, 100)
    assert progress_bar(30, 100, width=10) == "[###.......]  30% 30/100 files"
    assert progress_bar(5, None, width=4) == "[????] 5 files so far"


def test_progress_repeats_a_slow_bar_every_few_seconds() -> None:
    said: list[str] = []
    now = [0.0]
    progress = Progress(lambda update: said.append(update["message"]), clock=lambda: now[0])
    for step in range(3):
        now[0] = step * 2.5
        progress.update({"event": "analysis.progress", "files_done": step, "files_total": 1000})
    assert len(said) == 3

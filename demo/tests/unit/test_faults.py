from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from demosvc.faults import (
    FaultError,
    Faults,
    FaultState,
    apply_fault_update,
    load_start_faults,
    parse_fault_spec,
)


def test_empty_spec_means_no_faults() -> None:
    assert parse_fault_spec("  ") == Faults()
    assert Faults().active() == []


def test_spec_parses_flags_and_seconds_separated_by_commas_or_whitespace() -> None:
    faults = parse_fault_spec("unhealthy, slow=0.25\nhang exit_after=3")
    assert faults == Faults(unhealthy=True, hang=True, slow=0.25, exit_after=3.0)
    assert faults.active() == ["unhealthy", "hang", "slow", "exit_after"]


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("explode", "explode"),
        ("unhealthy=1", "unhealthy"),
        ("slow", "slow"),
        ("slow=fast", "slow"),
        ("slow=-1", "slow"),
        ("slow=nan", "slow"),
        ("exit_after=0", "exit_after"),
    ],
)
def test_bad_spec_names_the_fault(spec: str, fault: str) -> None:
    with pytest.raises(FaultError) as caught:
        parse_fault_spec(spec, source="FAULT env var")
    assert caught.value.fault == fault
    assert "FAULT env var" in str(caught.value)


def test_fault_file_and_env_var_merge_with_env_winning(tmp_path: Path) -> None:
    (tmp_path / "FAULT").write_text("unhealthy\nslow=2\n")
    faults = load_start_faults({"FAULT": "slow=0.1"}, tmp_path)
    assert faults == Faults(unhealthy=True, slow=0.1)


def test_bad_fault_file_error_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "FAULT").write_text("boom")
    with pytest.raises(FaultError, match=re.escape(str(tmp_path / "FAULT"))):
        load_start_faults({}, tmp_path)


def test_no_file_and_no_env_var_means_no_faults(tmp_path: Path) -> None:
    assert load_start_faults({}, tmp_path) == Faults()


def test_runtime_update_changes_only_the_given_knobs() -> None:
    current = Faults(hang=True, slow=1.0)
    assert apply_fault_update(current, {"unhealthy": True, "slow": 0.5}) == Faults(
        unhealthy=True, hang=True, slow=0.5
    )
    assert apply_fault_update(current, {"slow": None, "hang": False}) == Faults()


@pytest.mark.parametrize(
    ("update", "fault"),
    [
        ({"crash_on_start": True}, "crash_on_start"),
        ({"nope": True}, "nope"),
        ({"unhealthy": "yes"}, "unhealthy"),
        ({"slow": True}, "slow"),
        ({"slow": "1"}, "slow"),
        ({"slow": -2}, "slow"),
        ([1, 2], "body"),
    ],
)
def test_bad_runtime_update_names_the_fault(update: object, fault: str) -> None:
    with pytest.raises(FaultError) as caught:
        apply_fault_update(Faults(), update)
    assert caught.value.fault == fault


def test_exit_after_fires_the_callback() -> None:
    fired = threading.Event()
    state = FaultState(Faults(exit_after=0.01), on_exit_after=lambda _s: fired.set())
    assert fired.wait(timeout=2.0)
    state.close()


def test_clear_cancels_a_pending_exit_after() -> None:
    fired = threading.Event()
    state = FaultState(Faults(), on_exit_after=lambda _s: fired.set())
    state.update({"exit_after": 0.1})
    state.clear()
    # A negative check needs some time to pass; the timer would have fired at 0.1 s.
    assert not fired.wait(timeout=0.25)


def _in_thread(target: object) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def run() -> None:
        target()  # type: ignore[operator]
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def test_hang_blocks_until_cleared() -> None:
    state = FaultState(Faults(hang=True), on_exit_after=lambda _s: None)
    _, done = _in_thread(state.wait_while_hung)
    assert not done.wait(timeout=0.05)
    state.update({"hang": False})
    assert done.wait(timeout=2.0)


def test_close_releases_hung_and_slow_waiters() -> None:
    state = FaultState(Faults(hang=True, slow=30.0), on_exit_after=lambda _s: None)
    _, hung = _in_thread(state.wait_while_hung)
    _, slowed = _in_thread(state.delay)
    state.close()
    assert hung.wait(timeout=2.0)
    assert slowed.wait(timeout=2.0)


def test_lowering_slow_releases_a_delayed_request() -> None:
    state = FaultState(Faults(slow=30.0), on_exit_after=lambda _s: None)
    _, slowed = _in_thread(state.delay)
    assert not slowed.wait(timeout=0.05)
    state.update({"slow": 0})
    assert slowed.wait(timeout=2.0)

"""The REPL driven through a pseudo-terminal against a real daemon."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from gaia_actors.control import commands
from tests.gaia_actors.control.test_control import REPO, DaemonProcess

PROMPT = "gaia> "


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path_factory.mktemp("repl")).start()
    yield process
    assert process.stop() == 0, process.output()


def as_a_foreground_job() -> None:
    """The REPL starts as a terminal's shell starts a foreground command: with SIGINT at its
    default, so that Ctrl-C interrupts it. Started from a background job of a shell without job
    control (a CI runner's script, ``cmd &``), the tests inherit SIGINT ignored, and so would the
    REPL: Python keeps an inherited SIG_IGN instead of raising KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(daemon: DaemonProcess, *extra: str, state_dir: Path | None = None) -> pexpect.spawn:
    env = {**daemon.env, "TERM": "dumb", "NO_COLOR": "1"}
    if state_dir is not None:
        env["GAIA_STATE_DIR"] = str(state_dir)
    return pexpect.spawn(
        sys.executable,
        ["run.py", "--config", str(daemon.config), "repl", *extra],
        cwd=str(REPO),
        env=env,
        encoding="utf-8",
        timeout=20,
        dimensions=(50, 220),
        preexec_fn=as_a_foreground_job,
    )


@pytest.fixture(scope="module")
def shared(daemon: DaemonProcess) -> Iterator[pexpect.spawn]:
    """One session for the tests that leave it at a fresh prompt (a spawn costs ~0.5 s)."""
    child = spawn(daemon)
    child.expect_exact(PROMPT)
    yield child
    if child.isalive():
        child.sendeof()
        child.expect(pexpect.EOF)
    child.close()


@pytest.fixture
def repl(daemon: DaemonProcess) -> Iterator[pexpect.spawn]:
    """A session of its own, for a test that interrupts or leaves it."""
    child = spawn(daemon)
    child.expect_exact(PROMPT)
    yield child
    if child.isalive():
        child.sendeof()
        child.expect(pexpect.EOF)
    child.close()


def leave(child: pexpect.spawn) -> int:
    """Ctrl-D at the prompt; the exit status."""
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus)


def test_tab_completes_commands_actors_messages_and_fields(shared: pexpect.spawn) -> None:
    shared.send("sen\t")
    shared.expect_exact("send ")
    shared.send("bu\t")
    shared.expect_exact("bus ")
    shared.send("GetSt\t")
    shared.expect_exact("GetState ")
    shared.send("\r")
    shared.expect_exact("message  GetState")
    shared.expect_exact(PROMPT)
    shared.send("ask bus Hang sec\t")
    shared.expect_exact("seconds=")
    shared.send("abc\r")
    shared.expect_exact("Hang.seconds: expected float, got 'abc'")
    shared.expect_exact(PROMPT)


def test_injection_errors_name_the_problem(shared: pexpect.spawn) -> None:
    shared.sendline("ask bus Hang secs=1")
    shared.expect_exact("Hang has no field 'secs'; fields: seconds")
    shared.expect_exact(PROMPT)
    shared.sendline("ask store InsertNow")
    shared.expect_exact("InsertNow.table is required (type str)")
    shared.expect_exact(PROMPT)
    shared.sendline("send nobody GetState")
    shared.expect_exact("no actor named 'nobody'")
    shared.expect_exact(PROMPT)
    shared.sendline("ask bus GetState")
    shared.expect(r"published\s+\d+")
    shared.expect_exact(PROMPT)


def test_help_shows_commands_and_message_fields(shared: pexpect.spawn) -> None:
    shared.sendline("help")
    shared.expect_exact("crash ACTOR")
    shared.expect_exact(PROMPT)
    shared.sendline("help Hang")
    shared.expect_exact("seconds: float  (default 10.0)")
    shared.expect_exact(PROMPT)
    shared.sendline("help hang")
    shared.expect_exact("usage: hang ACTOR [SECONDS]")
    shared.expect_exact(PROMPT)


def test_help_is_aligned_grouped_and_plain(shared: pexpect.spawn) -> None:
    shared.sendline("help")
    shared.expect_exact(PROMPT)
    text = shared.before.replace("\r\n", "\n")
    assert "Messages (help MESSAGE shows its fields):" in text
    assert "`" not in text  # no reStructuredText quoting
    assert "Health and traffic:" in text
    assert "The shell:" in text
    columns = set()
    for cmd in commands.commands().values():
        line = next(line for line in text.splitlines() if line.startswith(f"  {cmd.usage()}"))
        if line.strip() != cmd.usage():  # a long synopsis has its help on the next line
            columns.add(len(line) - len(line[len(cmd.usage()) + 2 :].lstrip()))
    assert len(columns) == 1, columns  # every command's help starts in the same column


def test_unknown_command_and_unavailable_kill_are_explained(shared: pexpect.spawn) -> None:
    shared.sendline("frobnicate")
    shared.expect_exact("unknown command")
    shared.expect_exact(PROMPT)
    if commands.get("kill") is None:
        shared.sendline("kill prod")
        shared.expect_exact("not available")
        shared.expect_exact(PROMPT)


def test_history_is_kept_across_sessions(daemon: DaemonProcess) -> None:
    first = spawn(daemon)
    first.expect_exact(PROMPT)
    first.sendline("help messages")
    first.expect_exact("usage: messages")
    first.expect_exact(PROMPT)
    assert leave(first) == 0
    second = spawn(daemon)
    second.expect_exact(PROMPT)
    second.send("\x1b[A")  # up arrow: the previous session's last line
    second.expect_exact("help messages")
    second.send("\r")
    second.expect_exact("usage: messages")
    second.expect_exact(PROMPT)
    assert leave(second) == 0
    assert "help messages" in (daemon.state_dir / "repl_history").read_text()


def test_watch_shows_the_restart_of_a_crashed_bus_until_ctrl_c(
    daemon: DaemonProcess, repl: pexpect.spawn
) -> None:
    repl.sendline("watch --event supervisor.*")
    repl.expect_exact("watching supervisor.*")
    with daemon.client() as client:
        client.command("crash", {"actor": "bus"})
    # The control server restarts with the bus (rest_for_one); watch reconnects and shows
    # the stored events it missed, among them the bus starting again.
    repl.expect(r"supervisor\.child_started \[root\] child=bus")
    repl.sendintr()
    repl.expect_exact("(stopped watching)")
    repl.expect_exact(PROMPT)
    repl.sendline("actors")  # the session's own connection was reopened
    repl.expect(r"bus\s+running")
    repl.expect_exact(PROMPT)
    assert leave(repl) == 0


def test_ctrl_c_at_the_prompt_keeps_the_shell_and_ctrl_d_leaves(repl: pexpect.spawn) -> None:
    repl.send("half a line")
    # Once readline echoes it, it reads: a Ctrl-C before that would flush the typed text
    # from the tty and could reach Python before readline waits for input.
    repl.expect_exact("half a line")
    repl.sendintr()
    repl.expect_exact(PROMPT)
    repl.sendline("actors")
    repl.expect(r"control\s+running")
    repl.expect_exact(PROMPT)
    assert leave(repl) == 0


def test_json_mode_prints_results_as_json(daemon: DaemonProcess) -> None:
    child = spawn(daemon, "--json")
    child.expect_exact(PROMPT)
    child.sendline("ask bus GetState")
    child.expect_exact('"actor": "bus"')
    child.expect_exact(PROMPT)
    assert leave(child) == 0


def test_without_a_daemon_it_says_how_to_start_one(daemon: DaemonProcess, tmp_path: Path) -> None:
    child = spawn(daemon, state_dir=tmp_path / "empty")
    child.expect_exact("start one with: python run.py")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3

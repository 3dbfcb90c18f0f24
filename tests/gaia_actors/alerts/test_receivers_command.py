"""The command receiver with real child processes: the payload on stdin, the facts in the
environment, exit statuses, and a timeout that kills the whole process group."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gaia_actors.alerts.receivers import CommandReceiver, DeliveryFailed, build_receiver
from gaia_actors.settings import ReceiverSettings
from tests.conftest import wait_until
from tests.gaia_actors.alerts.notifications import alert, notification

MARGIN = 1.5  # seconds past the timeout: the kill, and the reaping, on a loaded machine


def _script(tmp_path: Path, code: str) -> list[str]:
    path = tmp_path / "receiver.py"
    path.write_text(textwrap.dedent(code), encoding="utf-8")
    return [sys.executable, str(path)]


RECORD = """
    import json, os, sys
    record = {
        "stdin": json.load(sys.stdin),
        "env": {k: v for k, v in os.environ.items() if k.startswith("GAIA_ALERT_")},
        "inherited": os.environ.get("RECEIVER_TEST_MARK"),
    }
    with open(sys.argv[1], "w") as out:
        json.dump(record, out)
"""


def test_a_command_gets_the_payload_on_stdin_and_the_facts_in_its_environment(
    tmp_path: Path,
) -> None:
    out = tmp_path / "record.json"
    argv = [*_script(tmp_path, RECORD), str(out)]
    environ = {**os.environ, "RECEIVER_TEST_MARK": "inherited"}
    sent = notification(alert(0), alert(1, env="staging", incident_id=None), test=True)
    delivery = CommandReceiver("hook", argv, timeout=30, environ=environ).send(sent)
    assert delivery.answer == "exit 0"
    record = json.loads(out.read_text())
    assert record["stdin"] == sent.payload()
    assert record["inherited"] == "inherited"
    assert record["env"] == {
        "GAIA_ALERT_ID": "n-0001",
        "GAIA_ALERT_STATUS": "firing",
        "GAIA_ALERT_SEVERITY": "critical",
        "GAIA_ALERT_TITLE": "[CRITICAL] [prod, staging] 2 alerts",
        "GAIA_ALERT_SUMMARY": "prod failed: restart budget spent, data verified, nothing to roll "
        "back",
        "GAIA_ALERT_NAME": "environment_failed",
        "GAIA_ALERT_ENV": "prod,staging",
        "GAIA_ALERT_INCIDENT_ID": "42",
        "GAIA_ALERT_COUNT": "2",
        "GAIA_ALERT_RECEIVER": "ops",
        "GAIA_ALERT_GROUP": "env=prod",
        "GAIA_ALERT_TEST": "1",
        "GAIA_ALERT_VERSION": "1",
    }


def test_a_failing_command_fails_with_its_exit_status_and_the_end_of_its_output(
    tmp_path: Path,
) -> None:
    code = """
        import sys
        for i in range(100):
            print(f"line {i} " + "x" * 90, flush=True)
        print("curl: (7) Failed to connect to chat.example.com port 443", file=sys.stderr)
        sys.exit(7)
    """
    with pytest.raises(DeliveryFailed) as failed:
        CommandReceiver("hook", _script(tmp_path, code), timeout=30).send(notification())
    reason = failed.value.reason
    assert reason.startswith("exit 7: …")
    assert reason.endswith("curl: (7) Failed to connect to chat.example.com port 443")
    assert len(reason) < 300


def test_a_command_that_cannot_start_fails_saying_so(tmp_path: Path) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        CommandReceiver("hook", [str(tmp_path / "missing")]).send(notification())
    assert failed.value.reason.startswith(f"cannot run {tmp_path / 'missing'}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not yet reaped


def test_a_command_past_its_timeout_is_killed_with_everything_it_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    code = f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """
    receiver = CommandReceiver("hook", _script(tmp_path, code), timeout=1.5)
    started = time.monotonic()
    with pytest.raises(DeliveryFailed) as failed:
        receiver.send(notification())
    assert time.monotonic() - started < 1.5 + MARGIN
    assert failed.value.reason.startswith("killed after its timeout of 1.5 s")
    grandchild = int(pidfile.read_text())
    wait_until(lambda: not _alive(grandchild), timeout=5, what="the grandchild is gone")


def test_the_factory_builds_a_command_receiver(tmp_path: Path) -> None:
    out = tmp_path / "record.json"
    settings = ReceiverSettings(
        name="hook", kind="command", command=(*_script(tmp_path, RECORD), str(out)), timeout=30
    )
    receiver = build_receiver(settings)
    assert (receiver.target, receiver.timeout) == (sys.executable, 30)
    receiver.send(notification())
    assert json.loads(out.read_text())["env"]["GAIA_ALERT_ID"] == "n-0001"

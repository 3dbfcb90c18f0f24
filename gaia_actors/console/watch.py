"""The live views that run until Ctrl-C: ``watch``, the daemon's events, riding out a restart
of the control server (shared by the command line and the REPL), and ``monitor``, the
``status`` command shown again and again."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

from gaia_actors.console.client import Client, ConnectionLost
from gaia_actors.console.commandline import EXIT_OK, invoke
from gaia_actors.console.render import Printer
from gaia_actors.control import commands
from gaia_actors.errors import DaemonUnreachable, UsageError
from gaia_actors.settings import Settings

RECONNECT_PAUSE = 0.2


def watch(
    path: Path,
    printer: Printer,
    patterns: tuple[str, ...] = ("*",),
    env: str | None = None,
) -> None:
    """Print events until Ctrl-C (KeyboardInterrupt propagates to the caller).

    A restart of the control server (it restarts with the bus) ends the stream: watch
    reconnects and asks for the stored events it missed (``since``), so the events about
    the restart itself are shown, each once.
    """
    _Watch(path, printer, patterns, env).run()


class _Watch:
    def __init__(
        self, path: Path, printer: Printer, patterns: tuple[str, ...], env: str | None
    ) -> None:
        self.path = path
        self.printer = printer
        self.patterns = patterns
        self.env = env
        self.started = self.last_ts = time.time()
        self.seen: deque[tuple[Any, ...]] = deque(maxlen=5000)
        self.reconnecting = False

    def run(self) -> None:
        while True:
            try:
                client = Client.connect(self.path)
            except DaemonUnreachable:
                if not self.reconnecting:
                    raise
                time.sleep(RECONNECT_PAUSE)  # a person waiting for the control server
                continue
            try:
                self.stream(client)
            except ConnectionLost:
                pass
            finally:
                client.close()
            # The daemon ended the stream (its control server stopped): carry on watching.
            self.printer.note(
                "(connection lost: the control server restarted or the daemon stopped; "
                "reconnecting, Ctrl-C to stop)"
            )
            self.reconnecting = True

    def stream(self, client: Client) -> None:
        since = max(self.started, self.last_ts - 1.0) if self.reconnecting else None
        for frame in client.subscribe(self.patterns, self.env, since):
            if "subscribed" in frame:
                self.printer.note("(reconnected)" if self.reconnecting else self.banner())
            elif "event" in frame:
                self.show(frame["event"])
            elif "dropped" in frame:
                self.printer.note(f"({frame['dropped']} events dropped: output too slow)")

    def banner(self) -> str:
        where = f" env={self.env}" if self.env else ""
        return f"watching {' '.join(self.patterns)}{where}; Ctrl-C to stop"

    def show(self, event: Any) -> None:
        key = (event.get("ts"), event.get("event"), event.get("actor"), event.get("child"))
        if key in self.seen:
            return  # sent live before the reconnection and again from the store
        self.seen.append(key)
        self.printer.event(event)
        ts = event.get("ts")
        if isinstance(ts, int | float):
            self.last_ts = max(self.last_ts, ts)


def monitor(settings: Settings, printer: Printer, interval: float, count: int | None) -> int:
    """`status` again and again until Ctrl-C (or ``count`` views)."""
    status = commands.get("status")
    if status is None:
        raise UsageError("monitor", "it shows the `status` command, which no capability registers")
    shown = 0
    try:
        while count is None or shown < count:
            result = invoke(status, {}, settings, printer)
            printer.screen(result, status, f"every {interval:g}s; Ctrl-C to stop")
            shown += 1
            if count is None or shown < count:
                time.sleep(interval)  # a person's refresh interval, not a wait on work
    except KeyboardInterrupt:
        pass
    return EXIT_OK

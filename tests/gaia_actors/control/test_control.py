"""The control socket against a real daemon (subprocess) and an in-process tree."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaia_actors.app import start_root
from gaia_actors.console.client import (
    Client,
    Code,
    ConnectionLost,
    RemoteError,
    connect_socket,
    encode,
)
from gaia_actors.control import commands
from gaia_actors.control import server as control
from gaia_actors.control.commands import CommandContext, command
from gaia_actors.control.connection import TELL_BURST
from gaia_actors.control.server import ControlServer
from gaia_actors.errors import ControlError
from gaia_actors.settings import Settings, load
from supervisors import Link, Registry
from tests.conftest import wait_until

REPO = Path(__file__).resolve().parents[3]
MAX_LINE = 4096  # small, so oversize frames are cheap to fuzz
CONFIG = f"""
[logging]
console = "off"
[store]
flush_interval = 0.05
[control]
max_line_bytes = {MAX_LINE}
send_timeout = 60
[supervision]
max_restarts = 100
max_seconds = 5
backoff_initial = 0.02
backoff_max = 0.1
stable_after = 1
ping_interval = 0.2
ping_timeout = 1.0
[metrics]
listen = ""
"""


class DaemonProcess:
    """``python run.py`` on a temporary state directory with no environments."""

    def __init__(self, root: Path, config: str = CONFIG) -> None:
        self.root = root
        self.config = root / "gaia.toml"
        self.config.write_text(config, encoding="utf-8")
        self.state_dir = root / "state"
        self.env = {**os.environ, "GAIA_STATE_DIR": str(self.state_dir)}
        self.env.pop("GAIA_CONFIG", None)
        self.socket = self.state_dir / "control.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        output = (self.root / "daemon.out").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "run.py", "--config", str(self.config)],
            cwd=REPO,
            env=self.env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, timeout=30, interval=0.05)
        return self

    def answers(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.output()
        try:
            with Client.connect(self.socket, timeout=1.0) as client:
                return bool(client.ping()["pong"])
        except (OSError, ConnectionLost, RemoteError, Exception):
            return False

    def client(self) -> Client:
        """A connection, once the control server answers (a test may have restarted it)."""
        wait_until(self.answers, timeout=10)
        return Client.connect(self.socket)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "run.py", "--config", str(self.config), *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def output(self) -> str:
        path = self.root / "daemon.out"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> int | None:
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            raise
        finally:
            self.process = None


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path_factory.mktemp("control")).start()
    yield process
    assert process.stop() == 0, process.output()


@pytest.fixture
def client(daemon: DaemonProcess) -> Iterator[Client]:
    with daemon.client() as connection:
        yield connection


def raw(daemon: DaemonProcess) -> socket.socket:
    sock = connect_socket(daemon.socket)
    sock.settimeout(10)
    return sock


def read_frames(sock: socket.socket, count: int) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    data = b""
    while len(frames) < count:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {frames}"
        data += chunk
        *lines, data = data.split(b"\n")
        frames.extend(json.loads(line) for line in lines)
    return frames


def node(client: Client, name: str) -> dict[str, Any]:
    return next(n for n in client.actors() if n["name"] == name)


# --- the socket -----------------------------------------------------------------------------


def test_socket_is_private_to_the_user(daemon: DaemonProcess) -> None:
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.state_dir.stat().st_mode) == 0o700


def test_actors_lists_the_tree_with_states(client: Client) -> None:
    # The socket answers while the tree still starts: a supervisor is listed once all its
    # children have started (`services` a moment after its child `control` answers).
    def tree() -> dict[str, Any] | None:
        nodes = {n["name"]: n for n in client.actors()}
        return nodes if "services" in nodes else None

    nodes = wait_until(tree)
    assert nodes is not None
    assert {"store", "bus", "control"} <= set(nodes)
    assert all(nodes[name]["parent"] == "root" for name in ("store", "bus", "services"))
    assert nodes["control"]["parent"] == "services"
    assert nodes["control"]["state"] == "running"
    assert nodes["control"]["generation"] >= 1


def test_messages_describe_fields(client: Client) -> None:
    hang = next(m for m in client.messages() if m["name"] == "Hang")
    assert hang["fields"] == [
        {"name": "seconds", "type": "float", "required": False, "default": "10.0"}
    ]


def test_ask_round_trip_answers_with_the_actors_state(client: Client) -> None:
    timings = []
    for _ in range(200):
        started = time.perf_counter()
        state = client.ask("bus", "GetState")
        timings.append(time.perf_counter() - started)
    assert state["actor"] == "bus"
    median = statistics.median(timings) * 1e6
    print(f"\nask bus GetState over the socket: median {median:.0f} us, 200 round trips")
    assert median < 50_000


def test_tell_is_delivered_in_order_before_a_later_ask(client: Client) -> None:
    before = client.ask("bus", "GetState")["published"]
    for i in range(5):
        client.tell("bus", "Event", {"name": "test.tell", "data": [["i", str(i)]]})
    assert client.ask("bus", "GetState")["published"] == before + 5


# Each malformed request gets an error naming what is wrong; the connection carries on.
BAD_FRAMES = [
    (b"{not json", Code.BAD_JSON, ""),
    (b"\xff\xfe{}", Code.BAD_JSON, ""),
    (b"[1, 2]", Code.BAD_FRAME, ""),
    (b'{"id": [1], "op": "ping"}', Code.BAD_FRAME, "id"),
    (b'{"id": 1}', Code.UNKNOWN_OP, "op"),
    (b'{"id": 1, "op": "explode"}', Code.UNKNOWN_OP, "op"),
    (
        b'{"id": 1, "op": "tell", "actor": "nobody", "message": "GetState"}',
        Code.UNKNOWN_ACTOR,
        "actor",
    ),
    (b'{"id": 1, "op": "tell", "message": "GetState"}', Code.MISSING_FIELD, "actor"),
    (b'{"id": 1, "op": "tell", "actor": 7, "message": "GetState"}', Code.BAD_FIELD, "actor"),
    (
        b'{"id": 1, "op": "tell", "actor": "bus", "message": "Nope"}',
        Code.UNKNOWN_MESSAGE,
        "message",
    ),
    (
        b'{"id": 1, "op": "ask", "actor": "store", "message": "Hang", "fields": {"secs": 1}}',
        Code.UNKNOWN_FIELD,
        "secs",
    ),
    (
        b'{"id": 1, "op": "ask", "actor": "store", "message": "InsertNow", "fields": {}}',
        Code.MISSING_FIELD,
        "table",
    ),
    (
        b'{"id": 1, "op": "tell", "actor": "bus", "message": "Hang", "fields": {"seconds": "x"}}',
        Code.BAD_FIELD,
        "seconds",
    ),
    (
        b'{"id": 1, "op": "tell", "actor": "bus", "message": "Hang", "fields": [1]}',
        Code.BAD_FIELD,
        "fields",
    ),
    (
        b'{"id": 1, "op": "ask", "actor": "bus", "message": "GetState", "timeout": 1e9}',
        Code.BAD_FIELD,
        "timeout",
    ),
    (b'{"id": 1, "op": "command", "name": "nope"}', Code.UNKNOWN_COMMAND, "name", "'nope'"),
    (
        b'{"id": 1, "op": "command", "name": "hang", "args": {"actor": "bus", "seconds": "x"}}',
        Code.BAD_ARGUMENT,
        "seconds",
    ),
    (b'{"id": 1, "op": "command", "name": "crash", "args": {}}', Code.BAD_ARGUMENT, "actor"),
    (
        b'{"id": 1, "op": "command", "name": "crash", "args": {"actor": "root"}}',
        Code.BAD_ARGUMENT,
        "actor",
    ),
    (b'{"id": 1, "op": "ask", "actor": "root", "message": "GetState"}', Code.ACTOR_ERROR, ""),
    (b'{"id": 1, "op": "subscribe", "patterns": []}', Code.BAD_FIELD, "patterns"),
    (b'{"id": 1, "op": "cancel"}', Code.MISSING_FIELD, "target"),
]


@pytest.mark.parametrize("case", BAD_FRAMES, ids=lambda case: str(case[1]))
def test_malformed_request_gets_a_coded_error(daemon: DaemonProcess, case: tuple[Any, ...]) -> None:
    frame, code, field, *mention = case
    with raw(daemon) as sock:
        sock.sendall(frame + b"\n" + encode({"id": "after", "op": "ping"}))
        replies = {f["id"]: f for f in read_frames(sock, 2)}  # an ask answers later
    error, after = replies.get(1) or replies[None], replies["after"]
    assert error["ok"] is False, error
    assert error["error"]["code"] == code, error
    assert error["error"]["message"]
    if field:
        assert error["error"]["field"] == field
        assert (mention or [field])[0] in error["error"]["message"]
    assert after == {"id": "after", "ok": True, "result": after["result"]}


def test_oversize_line_is_refused_and_the_connection_resynchronises(daemon: DaemonProcess) -> None:
    with raw(daemon) as sock:
        sock.sendall(b"x" * (MAX_LINE * 3))  # no newline yet: refused as soon as it is too big
        (error,) = read_frames(sock, 1)
        sock.sendall(b"y" * 100 + b"\n" + encode({"id": 2, "op": "ping"}))
        (pong,) = read_frames(sock, 1)
    assert error["error"]["code"] == Code.TOO_LARGE
    assert str(MAX_LINE) in error["error"]["message"]
    assert pong["id"] == 2
    assert pong["ok"] is True


def test_subscribe_streams_matching_events_for_one_env(
    daemon: DaemonProcess, client: Client
) -> None:
    with daemon.client() as watcher:
        stream = watcher.subscribe(["test.sub.*"], env="prod")
        assert "subscribed" in next(stream)
        for env in ("dev", "prod"):
            client.tell("bus", "Event", {"name": "test.sub.one", "env": env})
        client.tell("bus", "Event", {"name": "test.other", "env": "prod"})
        client.tell("bus", "Event", {"name": "test.sub.two", "env": "prod"})
        first, second = next(stream), next(stream)
    assert first["event"]["event"] == "test.sub.one"
    assert first["event"]["env"] == "prod"
    assert second["event"]["event"] == "test.sub.two"


def test_subscriber_that_leaves_is_unsubscribed(daemon: DaemonProcess, client: Client) -> None:
    def streams() -> set[str]:
        subscribers = client.ask("bus", "GetState")["subscribers"]
        return {name for name in subscribers if name.startswith("control.stream.")}

    before = streams()
    with daemon.client() as watcher:
        assert "subscribed" in next(watcher.subscribe(["*"]))
        stream = streams() - before
        assert len(stream) == 1  # the stream's relay, subscribed by its name
    wait_until(lambda: not streams() & stream, timeout=5)
    with pytest.raises(RemoteError) as gone:
        client.tell(stream.pop(), "Crash", {})  # its name went with it
    assert gone.value.code == Code.UNKNOWN_ACTOR


def test_cancel_ends_a_stream_with_its_counts(daemon: DaemonProcess) -> None:
    with daemon.client() as watcher:
        request = watcher.send("subscribe", patterns=["test.cancel"])

        def backlog_has(kind: str) -> bool:
            watcher.call("ping")  # reading replies fills the stream's backlog meanwhile
            return any(kind in frame for frame in watcher.open[request])

        wait_until(lambda: backlog_has("subscribed"))
        watcher.tell("bus", "Event", {"name": "test.cancel"})
        wait_until(lambda: backlog_has("event"))
        cancelled = watcher.call("cancel", target=request)
        frames: list[dict[str, Any]] = []
        result = watcher.wait(request, frames.append)
    assert cancelled == {"cancelled": True}
    assert result == {"events": 1, "dropped": 0}
    assert [f["event"]["event"] for f in frames if "event" in f] == ["test.cancel"]


def flood_frames(count: int) -> list[bytes]:
    """``count`` 1 kB test.flood events told to the bus, as floods of at most a tell burst."""
    payload = "x" * 1000
    frames = [
        encode(
            {
                "id": i,
                "op": "tell",
                "actor": "bus",
                "message": "Event",
                "fields": {"name": "test.flood", "data": [["i", str(i)], ["p", payload]]},
            }
        )
        for i in range(count)
    ]
    return [b"".join(frames[i : i + TELL_BURST]) for i in range(0, len(frames), TELL_BURST)]


def tell_all(daemon: DaemonProcess, floods: list[bytes]) -> list[dict[str, Any]]:
    """Send each flood on a connection of its own; the replies."""
    replies = []
    for flood in floods:
        with raw(daemon) as sender:
            writer = threading.Thread(target=sender.sendall, args=(flood,))
            writer.start()  # replies are read meanwhile, or both sides block on full buffers
            replies += read_frames(sender, flood.count(b"\n"))
            writer.join()
    return replies


# The flood must reach the bus within the server's send timeout of the subscriber's buffer
# filling, or the server rightly drops the subscriber that reads nothing (the next test): the
# module's daemon allows a minute, as CPU-bound work against a wall-clock limit is stretched by
# other workers' load (12 s seen).
@pytest.mark.serial
def test_slow_subscriber_loses_events_counted_and_never_blocks_the_bus(
    daemon: DaemonProcess, client: Client
) -> None:
    before = client.ask("bus", "GetState")["published"]
    generation = node(client, "bus")["generation"]
    floods = flood_frames(2500)  # far more than the socket buffer and the stream's queue hold
    with daemon.client() as slow:
        stream = slow.subscribe(["test.flood"])
        assert "subscribed" in next(stream)
        replies = tell_all(daemon, floods)
        # The subscriber has read nothing, yet the bus got through every event: its sink
        # never waits on the client.
        published = client.ask("bus", "GetState", timeout=30)["published"]
        dropped = next(f["dropped"] for f in stream if "dropped" in f)
    assert all(r["ok"] for r in replies)
    assert dropped > 0
    assert published >= before + 2500
    # The bus worked through its backlog with pings waiting far behind it (the daemon's
    # ping_timeout is 1 s): busy, never taken for hung and replaced (which would also restart
    # every service after it, and hand its queue on out of order).
    assert node(client, "bus")["generation"] == generation


def test_a_subscriber_that_reads_nothing_is_disconnected_after_the_send_timeout(
    tmp_path: Path,
) -> None:
    config = CONFIG.replace("send_timeout = 60", "send_timeout = 0.3")
    daemon = DaemonProcess(tmp_path, config).start()
    try:
        with daemon.client() as slow:
            stream = slow.subscribe(["test.flood"])
            assert "subscribed" in next(stream)
            replies = tell_all(daemon, flood_frames(2500))
            received: list[dict[str, Any]] = []
            with pytest.raises((ConnectionLost, OSError)):
                received.extend(stream)  # what the kernel held, then the server's hang-up
        assert all(r["ok"] for r in replies)
        events = [f for f in received if f.get("event", {}).get("event") == "test.flood"]
        assert 0 < len(events) < 2500, received[:3]
        with daemon.client() as client:  # the server serves on
            assert client.ask("bus", "GetState")["published"] >= 2500
    finally:
        assert daemon.stop() == 0, daemon.output()


def test_command_that_restarts_the_control_server_still_gets_its_reply(
    daemon: DaemonProcess,
) -> None:
    # `crash bus` restarts control with it (rest_for_one): the stopping server drains
    # running requests before it hangs up, so the reply is not lost in the race.
    for _ in range(5):
        with daemon.client() as client:
            before = node(client, "bus")["generation"]
            assert client.command("crash", {"actor": "bus"})["crashed"] is True
        wait_until(lambda before=before: _generation(daemon, "bus") > before, timeout=10)


def test_stream_ends_with_a_final_reply_when_the_control_server_stops(
    daemon: DaemonProcess,
) -> None:
    with daemon.client() as watcher, daemon.client() as client:
        stream = watcher.subscribe(["test.never"])
        assert "subscribed" in next(stream)
        client.command("crash", {"actor": "bus"})
        with pytest.raises(StopIteration) as end:
            next(stream)
    assert end.value.value == {"events": 0, "dropped": 0}


def test_hung_control_server_is_replaced_and_keeps_its_socket(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        before = node(client, "control")["generation"]
        client.command("hang", {"actor": "control", "seconds": 1.6})
        # Connections are served outside the hung mailbox: this one keeps answering.
        assert client.ping()["pong"] is True
    # The liveness ping times out (1 s), a new generation takes the socket over, and the old
    # one's late on_stop (after 1.6 s) leaves the new socket file alone.
    wait_until(lambda: _generation(daemon) > before, timeout=10)
    hung_until = time.monotonic() + 2.0
    wait_until(lambda: time.monotonic() > hung_until, timeout=5)
    assert daemon.socket.exists()
    assert daemon.answers()


def _generation(daemon: DaemonProcess, actor: str = "control") -> int:
    """An actor's generation, or -1 while the control socket changes hands."""
    try:
        with daemon.client() as client:
            return int(node(client, actor)["generation"])
    except ControlError:
        return -1


# --- fuzzing ------------------------------------------------------------------------------------

ACTORS = ["bus", "store", "control", "root", "nobody", ""]
MESSAGES = ["GetState", "Flush", "Nope", "Unsubscribe", "Event"]
COMMAND_NAMES = ["actors", "messages", "nope", ""]
ASYNC_OPS = ("ask", "command", "subscribe")
leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
OPS = ["ping", "actors", "messages", "commands", "tell", "ask", "command", "subscribe", "cancel"]
# Per key: plausible values most of the time (so frames get past the first checks and reach
# the deeper ones), anything JSON otherwise.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "actor": st.sampled_from(ACTORS),
    "message": st.sampled_from(MESSAGES),
    "fields": st.dictionaries(
        st.sampled_from(["name", "subscriber", "x", "env", "level"]), leaves, max_size=2
    ),
    "timeout": st.floats(min_value=-1, max_value=0.5),
    "name": st.sampled_from(COMMAND_NAMES),
    "args": st.dictionaries(st.sampled_from(["actor", "x"]), leaves, max_size=2),
    "patterns": st.lists(st.sampled_from(["*", "x.*", ""]), max_size=2),
    "env": st.sampled_from(["prod", ""]),
    "since": st.floats(allow_nan=False),
    "target": st.integers(0, 3),
}
KEYS_OF = {
    "tell": ("actor", "message", "fields"),
    "ask": ("actor", "message", "fields", "timeout"),
    "command": ("name", "args"),
    "subscribe": ("patterns", "env", "since"),
    "cancel": ("target",),
}


# The strategies a draw uses, built once: building them per draw cost more than drawing.
one_in_ten = st.integers(0, 9)
one_in_five = st.integers(0, 4)
ops = st.sampled_from(OPS)
ids = st.integers(0, 3)
extra_keys = st.lists(st.sampled_from(sorted(PLAUSIBLE)), max_size=1)
line_kinds = st.sampled_from(["bytes", "json", "frame", "frame", "frame", "truncated", "huge"])
line_bytes = st.binary(max_size=200)
oversize = st.integers(1, 2000)


def _mostly(draw: st.DrawFn, good: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
    return draw(good) if draw(one_in_ten) else draw(other)


@st.composite
def frames(draw: st.DrawFn) -> dict[str, Any]:
    op = _mostly(draw, ops, leaves)
    frame: dict[str, Any] = {"op": op, "id": _mostly(draw, ids, json_values)}
    for key in KEYS_OF.get(op, ()) if isinstance(op, str) else ():
        if draw(one_in_five):  # now and then a key is missing
            frame[key] = _mostly(draw, PLAUSIBLE[key], json_values)
    for key in draw(extra_keys):
        frame.setdefault(key, draw(json_values))
    return frame


any_frame = frames()


@st.composite
def lines(draw: st.DrawFn) -> tuple[bytes, str]:
    """One line and what it should get: 'inline' (one reply), 'async' (0-1 reply), 'none'."""
    kind = draw(line_kinds)
    if kind == "bytes":
        data = draw(line_bytes).replace(b"\n", b"")
    elif kind == "json":
        data = json.dumps(draw(json_values)).encode()
    elif kind == "huge":
        data = b"{" + b"a" * (MAX_LINE + draw(oversize))
    else:
        data = json.dumps(draw(any_frame)).encode()
        if kind == "truncated" and len(data) > 1:
            data = data[: draw(st.integers(1, len(data) - 1))]
    return data, _expectation(data)


def _expectation(data: bytes) -> str:
    if not data.strip():
        return "none"
    if len(data) > MAX_LINE:
        return "inline"
    try:
        frame = json.loads(data)
    except (ValueError, RecursionError):
        return "inline"
    return "async" if isinstance(frame, dict) and frame.get("op") in ASYNC_OPS else "inline"


FUZZ_STATS = {"frames": 0, "examples": 0, "seconds": 0.0}
FUZZ_CODES: dict[str, int] = {}


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    batch=st.lists(lines(), min_size=4, max_size=24), vanish=st.sampled_from([None, "now", "mid"])
)
def test_fuzzed_frames_get_replies_and_never_hurt_the_daemon(
    daemon: DaemonProcess, batch: list[tuple[bytes, str]], vanish: str | None
) -> None:
    started = time.perf_counter()
    with raw(daemon) as sock:
        payload = b"".join(data + b"\n" for data, _ in batch)
        if vanish == "mid":
            sock.sendall(payload[: max(1, len(payload) // 2)])  # gone in the middle of a frame
        elif vanish == "now":
            sock.sendall(payload)
        else:
            sock.sendall(payload + encode({"id": "sentinel", "op": "ping"}))
            replies = _replies_until_sentinel(sock)
            inline = sum(1 for _, e in batch if e == "inline")
            maybe = sum(1 for _, e in batch if e == "async")
            assert inline <= len(replies) <= inline + maybe, (batch, replies)
            for reply in replies:
                code = "ok" if reply["ok"] else reply["error"]["code"]
                FUZZ_CODES[code] = FUZZ_CODES.get(code, 0) + 1
                if not reply["ok"]:
                    assert reply["error"]["code"] in set(Code) - {Code.INTERNAL}, reply
                    assert reply["error"]["message"], reply
    FUZZ_STATS["frames"] += len(batch) + 1
    FUZZ_STATS["examples"] += 1
    FUZZ_STATS["seconds"] += time.perf_counter() - started


def _replies_until_sentinel(sock: socket.socket) -> list[dict[str, Any]]:
    replies = []
    buffer = b""
    while True:
        chunk = sock.recv(65536)
        assert chunk, "the daemon closed the connection"
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            frame = json.loads(line)
            if frame.get("id") == "sentinel":
                return replies
            if "ok" in frame:
                replies.append(frame)


def test_daemon_still_serves_after_the_fuzzing(daemon: DaemonProcess) -> None:
    rate = FUZZ_STATS["frames"] / FUZZ_STATS["seconds"] if FUZZ_STATS["seconds"] else 0.0
    print(
        f"\nfuzz: {FUZZ_STATS['frames']} frames in {FUZZ_STATS['examples']} connections, "
        f"{FUZZ_STATS['seconds']:.1f} s, {rate:.0f} frames/s; replies: {sorted(FUZZ_CODES.items())}"
    )
    with daemon.client() as client:
        assert client.ping()["pong"] is True
        nodes = {n["name"]: n for n in client.actors()}
        assert {n["state"] for n in nodes.values()} == {"running"}
        wait_until(lambda: client.ask("control", "GetState")["clients"] == 1, timeout=10)


# --- in process: command progress and cancellation, stale and foreign sockets -----------------


@pytest.fixture
def progress_command() -> Iterator[threading.Event]:
    """A command that streams progress, then waits to be cancelled (registered for one test)."""
    cancelled = threading.Event()
    saved = commands.commands()  # loaded first: a later import cannot overwrite the fake

    @command("test-progress", help="test only", options=("steps",))
    def run(ctx: CommandContext, steps: int = 3) -> Any:
        for step in range(steps):
            ctx.progress({"message": "step", "step": step})
        if ctx.cancel.wait(10):
            cancelled.set()
        return "finished"

    yield cancelled
    commands._COMMANDS.clear()
    commands._COMMANDS.update(saved)


@pytest.fixture
def control_tree(settings: Settings) -> Iterator[Registry]:
    """store, bus and control in this process (so a test can register its own command)."""
    registry = Registry()
    root = start_root(settings, registry, capabilities=(control,))
    yield registry
    with contextlib.suppress(pykka.ActorDeadError):
        root.stop(block=True, timeout=10)


def test_command_streams_progress_and_is_cancelled_when_the_client_leaves(
    control_tree: Registry, settings: Settings, progress_command: threading.Event
) -> None:
    client = Client.connect(settings.socket_path)
    seen: list[Any] = []
    client.send("command", name="test-progress", args={"steps": "3"})
    while len(seen) < 3:
        seen.append(client.read_frame()["progress"])
    client.close()
    assert [s["step"] for s in seen] == [0, 1, 2]
    assert progress_command.wait(5), "the command was not cancelled by the disconnect"


def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    settings = load(_write(tmp_path), environ={"GAIA_STATE_DIR": str(tmp_path / "s")})
    settings.state_dir.mkdir()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(settings.socket_path))
    stale.close()  # the file stays, nothing listens: what a SIGKILLed daemon leaves
    ref = _start_control(settings)
    try:
        assert ref.is_alive()
        with Client.connect(settings.socket_path) as client:
            assert client.ping()["pid"] == os.getpid()
    finally:
        ref.stop(block=True, timeout=5)
    assert not settings.socket_path.exists()


def test_socket_another_process_answers_on_is_not_stolen(tmp_path: Path) -> None:
    settings = load(_write(tmp_path), environ={"GAIA_STATE_DIR": str(tmp_path / "s")})
    settings.state_dir.mkdir()
    foreign = socket.socket(socket.AF_UNIX)
    foreign.bind(str(settings.socket_path))
    foreign.listen(1)
    try:
        ref = _start_control(settings)
        assert not ref.is_alive()  # on_start refused, the supervisor would see a failed start
        assert settings.socket_path.exists()
    finally:
        foreign.close()


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "gaia.toml"
    path.write_text('[logging]\nconsole = "off"\n', encoding="utf-8")
    return path


def _start_control(settings: Settings) -> Any:
    link = Link(supervisor=None, registry=Registry(), name="control")
    ref = ControlServer.start(link, settings)
    assert link.started.wait(5)
    return ref

"""The control protocol's operations: one function per ``op``, each answering at once or
starting a worker on the connection (asks, commands and streams)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from gaia_actors import __version__
from gaia_actors.control import commands, core_commands
from gaia_actors.control.commands import CommandContext, UsageError
from gaia_actors.control.connection import TELL_RATE, Connection, Op, Request
from gaia_actors.control.frames import FrameError, get_field
from gaia_actors.control.protocol import PROTOCOL_VERSION, Code, to_json
from gaia_actors.control.streams import Stream
from gaia_actors.errors import InvalidMessage, Rejected
from gaia_actors.messages import build, describe, message_types
from gaia_actors.settings import Settings
from supervisors import AskTimeout, NotRunning, Registry

DEFAULT_ASK_TIMEOUT = 5.0
MAX_ASK_TIMEOUT = 60.0


def _actor(registry: Registry, frame: Mapping[str, Any]) -> str:
    name: str = get_field(frame, "actor", str)
    if name in registry.names():
        return name
    if registry.node(name) is None:
        known = ", ".join(sorted(registry.names())) or "none"
        raise FrameError(Code.UNKNOWN_ACTOR, f"no actor named {name!r}; actors: {known}", "actor")
    try:
        registry.lookup(name)
    except NotRunning as exc:
        raise FrameError(Code.NOT_RUNNING, str(exc), "actor") from None
    return name


def _message(frame: Mapping[str, Any], settings: Settings) -> Any:
    """Build the frame's message, with a code for each way its name or fields can be wrong."""
    name: str = get_field(frame, "message", str)
    fields: dict[str, Any] = get_field(frame, "fields", dict, {})
    cls = message_types().get(name)
    if cls is None:
        known = ", ".join(sorted(message_types()))
        raise FrameError(
            Code.UNKNOWN_MESSAGE, f"unknown message {name!r}; messages: {known}", "message"
        )
    infos = {info.name: info for info in describe(cls)}
    for key in fields:
        if key not in infos:
            listed = ", ".join(infos) or "none"
            raise FrameError(
                Code.UNKNOWN_FIELD, f"{name} has no field {key!r}; fields: {listed}", key
            )
    for info in infos.values():
        if info.required and info.name not in fields:
            raise FrameError(
                Code.MISSING_FIELD, f"{name}.{info.name} is required (type {info.type})", info.name
            )
    try:
        return build(name, fields, settings.environments)
    except InvalidMessage as exc:
        raise FrameError(Code.BAD_FIELD, str(exc), exc.field) from None


def op_ping(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    return {"pong": True, "pid": os.getpid(), "protocol": PROTOCOL_VERSION, "version": __version__}


def op_actors(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    return core_commands.actors(CommandContext(conn.settings, conn.registry))


def op_messages(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    return core_commands.messages(CommandContext(conn.settings, conn.registry))


def op_commands(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    return [describe_command(cmd) for cmd in sorted(commands.commands().values(), key=_name)]


def _name(cmd: commands.Command) -> str:
    return cmd.name


def describe_command(cmd: commands.Command) -> dict[str, Any]:
    params = [
        {**dataclasses.asdict(p), "type": p.type.__name__, "kind": kind}
        for kind, group in (("arg", cmd.args), ("option", cmd.options))
        for p in group
    ]
    return {
        "name": cmd.name,
        "help": cmd.help,
        "usage": cmd.usage(),
        "offline": cmd.offline,
        "params": params,
    }


def op_tell(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    actor = _actor(conn.registry, frame)
    message = _message(frame, conn.settings)
    wait = conn.tells.take()
    if wait:
        conn.clients.count("tells_refused")
        raise FrameError(
            Code.BUSY,
            f"more than {TELL_RATE:g} tells per second on this connection; retry in {wait:.2f} s",
        )
    try:
        conn.registry.tell(actor, message)
    except NotRunning as exc:
        raise FrameError(Code.NOT_RUNNING, str(exc), "actor") from None
    return {"sent": True, "actor": actor, "message": type(message).__name__}


def op_ask(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    actor = _actor(conn.registry, frame)
    message = _message(frame, conn.settings)
    timeout = float(get_field(frame, "timeout", (int, float), DEFAULT_ASK_TIMEOUT))
    if not 0 < timeout <= MAX_ASK_TIMEOUT:
        raise FrameError(
            Code.BAD_FIELD, f"timeout must be in (0, {MAX_ASK_TIMEOUT:g}] seconds", "timeout"
        )

    def work(_request: Request) -> Any:
        try:
            return conn.registry.ask(actor, message, timeout=timeout)
        except (Rejected, NotRunning, AskTimeout):
            raise
        except Exception as exc:  # noqa: BLE001 - the actor answered with an exception
            raise FrameError(Code.ACTOR_ERROR, f"{actor} answered with {exc!r}") from None

    return conn.start_worker(request_id, work)


def op_command(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    name: str = get_field(frame, "name", str)
    values: dict[str, Any] = get_field(frame, "args", dict, {})
    cmd = commands.get(name)
    if cmd is None:
        known = ", ".join(sorted(commands.commands()))
        raise FrameError(
            Code.UNKNOWN_COMMAND, f"unknown command {name!r}; commands: {known}", "name"
        )
    try:
        kwargs = commands.bind(cmd, values, conn.settings)
    except UsageError as exc:
        raise FrameError(Code.BAD_ARGUMENT, str(exc), exc.param) from None

    def work(request: Request) -> Any:
        def progress(update: dict[str, Any]) -> None:
            conn.send({"id": request_id, "progress": to_json(update)})

        ctx = CommandContext(
            conn.settings, conn.registry, request.cancel, progress, lambda: conn.draining
        )
        return cmd.handler(ctx, **kwargs)

    return conn.start_worker(request_id, work)


def op_subscribe(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    patterns = get_field(frame, "patterns", list, ["*"])
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise FrameError(Code.BAD_FIELD, "patterns must be a list of non-empty strings", "patterns")
    env: str | None = get_field(frame, "env", str, None)
    since = get_field(frame, "since", (int, float), None)
    stream = Stream(conn, request_id, tuple(patterns), env, since)
    return conn.start_worker(request_id, stream.run)


def op_cancel(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    target = get_field(frame, "target", (int, str))
    return {"cancelled": conn.cancel(target)}


OPS: dict[str, Op] = {
    "ping": op_ping,
    "actors": op_actors,
    "messages": op_messages,
    "commands": op_commands,
    "tell": op_tell,
    "ask": op_ask,
    "command": op_command,
    "subscribe": op_subscribe,
    "cancel": op_cancel,
}

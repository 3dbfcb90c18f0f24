"""A stage: the base of the stage kinds (``stages``), what it is given (the ``Promotion`` it
shapes, a ``StageContext``) and what it answers (an ``Outcome``; its ``Step`` in the history).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from gaia_actors.layout import Layout, actor_name
from gaia_actors.pipeline.errors import StageCancelled, StageTimeout
from gaia_actors.settings import Settings, StageSettings
from supervisors import AskTimeout, Registry
from supervisors.records import record

_CANCEL_CHECK = 0.05  # seconds between looks at the cancel event while an ask runs


@dataclass
class Promotion:
    """One promotion (a ``pipelines`` row) as its stages see and shape it; only the runner
    thread touches it."""

    pipeline_id: int
    kind: str  # dev_to_staging | staging_to_prod
    source: str
    target: str
    release: str = ""
    release_dir: Path | None = None
    previous: str = ""  # the target's release before this promotion deployed
    backup: str = ""  # the target's backup taken by this promotion
    deploy_started: bool = False


@record
class StageContext:
    """What a running stage may use."""

    settings: Settings
    registry: Registry
    promotion: Promotion
    env: str
    deadline: float  # time.monotonic() value
    # Set when the promotion is cancelled or the daemon stops; a stage looks at it only
    # where stopping leaves nothing half done (a deploy that started runs to its end).
    cancel: threading.Event
    on_line: Callable[[str], None]
    artifacts: Path  # a directory for the stage's files (JUnit XML)
    token: str  # the STAGE_TOKEN value of this stage

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def layout(self, env: str | None = None) -> Layout:
        return Layout.of(self.settings, env or self.env)

    def ask(self, env: str, message: Any, timeout: float | None = None) -> Any:
        """Ask ``env``'s actor, waiting to the end (a deploy must finish before a rollback)."""
        wait = self.remaining() if timeout is None else timeout
        if wait <= 0:
            raise StageTimeout("no time left for the stage")
        try:
            return self.registry.ask(actor_name(env), message, timeout=wait)
        except AskTimeout as exc:
            raise StageTimeout(f"{env} did not answer {type(message).__name__} in time") from exc

    def ask_abandoning(self, env: str, message: Any) -> Any:
        """Ask ``env``'s actor, giving up on the answer when the promotion is cancelled (for
        work whose result may simply be dropped, such as a build)."""
        answers: queue.Queue[tuple[bool, Any]] = queue.Queue(1)

        def call() -> None:
            try:
                answers.put((True, self.ask(env, message)))
            except Exception as exc:  # noqa: BLE001 - handed to the waiting stage below
                answers.put((False, exc))

        threading.Thread(target=call, name=f"stage-ask-{env}", daemon=True).start()
        while True:
            try:
                ok, value = answers.get(timeout=_CANCEL_CHECK)
            except queue.Empty:
                if self.cancel.is_set():
                    what = type(message).__name__
                    raise StageCancelled(f"cancelled while {env} ran {what}") from None
                continue
            if not ok:
                raise value
            return value


def parked(registry: Registry, env: str) -> bool:
    """Whether ``env`` is parked FAILED: nothing to wait for, only an operator starts it."""
    node = registry.node(actor_name(env))
    return node is not None and node.state == "failed"


@record
class Outcome:
    """How a stage went; ``ok`` False with ``error`` saying why."""

    ok: bool
    summary: str
    error: str = ""
    exit_code: int | None = None
    output: str = ""
    tests: dict[str, Any] | None = None
    timed_out: bool = False
    cancelled: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@record
class Step:
    """What the history and the reports say of a stage (the rollback is a step too)."""

    position: int
    name: str
    kind: str
    env: str
    blocking: bool = True


class Stage:
    """Base of the stage kinds; ``run`` is the one hook."""

    kind: ClassVar[str] = ""

    def __init__(self, config: StageSettings, position: int, env: str) -> None:
        self.config = config
        self.position = position
        self.env = env

    @property
    def name(self) -> str:
        return self.config.name or self.config.kind

    @property
    def blocking(self) -> bool:
        return self.config.blocking

    @property
    def timeout(self) -> float:
        return self.config.timeout

    @property
    def step(self) -> Step:
        return Step(self.position, self.name, self.kind, self.env, self.blocking)

    def run(self, ctx: StageContext) -> Outcome:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "name": self.name,
            "kind": self.kind,
            "env": self.env,
            "blocking": self.blocking,
            "timeout": self.timeout,
        }

"""Errors of gaia_actors.

GaiaError
├── ConfigError          bad config file, key, type or value (exit code 2)
├── TemplateError        a command template with an unknown placeholder or a lone brace
├── DaemonError          the daemon cannot run (state directory locked, port busy)
│   └── LockHeld
├── Rejected             a message refused; the actor that refused it carries on
│   ├── UnknownMessage   the actor does not handle this message type
│   ├── InvalidMessage   a message name or field could not be converted
│   ├── Busy             the resource is taken (a promotion to the same target runs)
│   └── Superseded       the generation that got it was replaced (it woke from a hang)
├── StoreError           the database could not be written or read
├── EnvironmentFailure   an environment's process, release or data operation failed
├── PipelineError        a promotion could not run or failed
└── ControlError         the control protocol: a bad frame or an unreachable daemon
    └── DaemonUnreachable
"""

from __future__ import annotations


class GaiaError(Exception):
    """Root of every error gaia_actors raises on purpose."""


class ConfigError(GaiaError):
    """A configuration problem, naming the file, the key and what was expected."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class DaemonError(GaiaError):
    """The daemon cannot start or keep running."""


class LockHeld(DaemonError):
    def __init__(self, state_dir: str, pid: str) -> None:
        self.state_dir = state_dir
        self.pid = pid
        super().__init__(
            f"another gaia daemon (pid {pid or 'unknown'}) already runs on state directory "
            f"{state_dir}; stop it first or set GAIA_STATE_DIR to another directory"
        )


class Rejected(GaiaError):
    """A message was refused. Returned to an asker as its error; the actor keeps running."""


class UnknownMessage(Rejected):
    def __init__(self, actor: str, message: str) -> None:
        self.actor = actor
        self.message = message
        super().__init__(f"actor {actor!r} does not handle message {message!r}")


class Superseded(Rejected):
    """A message reached a generation its supervisor has already replaced (it was hung and
    woke up): it is not acted on, so two generations never work on the same thing."""

    def __init__(self, actor: str, generation: int, message: str) -> None:
        self.actor = actor
        self.generation = generation
        super().__init__(
            f"actor {actor!r} generation {generation} was replaced before it handled "
            f"{message}; send it again"
        )


class InvalidMessage(Rejected):
    """A message name, field name or field value that does not convert."""

    def __init__(self, message: str, problem: str, field: str = "") -> None:
        self.message = message
        self.field = field
        where = f"{message}.{field}" if field else message
        super().__init__(f"{where}: {problem}")


class Busy(Rejected):
    """The resource is taken; ``holder`` names who holds it."""

    def __init__(self, what: str, holder: str) -> None:
        self.what = what
        self.holder = holder
        super().__init__(f"{what} is busy: {holder}")


class StoreError(GaiaError):
    """The store could not write or read."""


class EnvironmentFailure(GaiaError):
    """An environment operation failed; carries the environment's name."""

    def __init__(self, env: str, problem: str) -> None:
        self.env = env
        super().__init__(f"environment {env!r}: {problem}")


class PipelineError(GaiaError):
    """A promotion could not run or failed."""


class ControlError(GaiaError):
    """A control protocol error."""


class DaemonUnreachable(ControlError):
    def __init__(self, socket_path: str, detail: str = "") -> None:
        self.socket_path = socket_path
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"no gaia daemon answers on {socket_path}{extra}; start one with: python run.py"
        )


class TemplateError(GaiaError):
    """A ``{name}`` template that cannot be expanded: an unknown name or a lone brace."""

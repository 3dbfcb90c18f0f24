"""Errors of gaia_actors: one root, ``GaiaError``; a package's own subtree lives in its
``errors.py`` (or beside the code that raises it) and is drawn here, the only drawing.
``exit_code`` is what ``gaia-env`` exits with when the error ends a command.

GaiaError                        exit code 1 unless a class below says otherwise
├── ConfigError                  bad config file, key, type or value (exit code 2)
├── UsageError                   a command's argument unknown, missing or unconvertible (2)
├── ParseError                   cli: argparse refused the command line (2)
├── ParserExit                   cli: --help or --version printed (its own status)
├── TemplateError                a command template with an unknown placeholder or a lone brace
├── DaemonError                  the daemon cannot run (state directory locked, port busy)
│   └── LockHeld                 another daemon holds the state directory (2)
├── Rejected                     a message refused; the actor that refused it carries on
│   ├── UnknownMessage           the actor does not handle this message type
│   ├── Superseded               the generation that got it was replaced (it woke from a hang)
│   ├── InvalidMessage           a message name or field could not be converted
│   ├── Busy                     the resource is taken (a promotion to the same target runs)
│   ├── PromotionRefused         pipeline: not configured, unknown id, not running
│   └── NoEnvironmentAvailable   monitoring.balancer: no healthy environment to route to
├── StoreError                   the database could not be written or read
├── UnexpectedReply              replies: an actor answered a query with the wrong record
├── EnvironmentFailure           an environment's process, release or data operation failed
├── ProcessError                 process: a child process could not be run or stopped
│   ├── SpawnError               the command could not be started (argv, cwd)
│   ├── StopError                the process group outlived SIGKILL (pid)
│   └── PidFileError             a pid file without a pid and a start time (path)
├── BackupError                  environments.backups: a backup or restore failed (path)
│   ├── NothingToBackUp          the data directory holds no database
│   ├── NoVerifiedBackup         no backup passes verification (why each was refused)
│   └── NotADatabase             environments.data: a matched file is not SQLite
├── ReleaseError                 layout: a release cannot be made or found
│   ├── BuildError               environments.builds: the build command failed; no release made
│   └── ReleaseNotFound          no complete release with that id
├── PipelineError                a promotion could not run or failed
│   └── StageError               pipeline: a stage could not do its work
│       ├── StageTimeout         it ran past its timeout (a command's process group was killed)
│       └── StageCancelled       the promotion was cancelled or interrupted while it ran
├── ImproveError                 improve: the improvement engine
│   ├── CommandError             a command could not be started (argv, cwd)
│   ├── BenchmarkError           a benchmark failed or printed no ops/sec figure (argv, output)
│   ├── WorkerFailure            improve.worker: an analysis worker gave up on its batch
│   └── PatchError               a verified patch could not be made or applied (path)
│       ├── PatchConflict        the target file is not the patch's pre-image (sha256s)
│       ├── PatchApplyError      writing failed; every touched file was restored (cause)
│       └── DeliveryError        improve.delivery: the tree changed or git refused
├── ControlError                 the control protocol: a bad frame or an unreachable daemon
│   ├── FrameError               control: a request that cannot be served (its error code)
│   ├── RemoteError              client: the daemon answered with an error frame (2 or 1)
│   └── DaemonUnreachable        no daemon answers on the socket (3)
│       └── ConnectionLost       client: the daemon went away mid-request
├── ProbeFailed                  monitoring.http11: a health check ended early (its kind)
├── DeliveryFailed               alerts.receivers: a notification was not delivered (why)
└── InjectedCrash                actor: a crash an operator asked for (fault injection)

The generic ``supervisors`` package keeps its own root, ``SupervisionError`` (exit code 1).
"""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class GaiaError(Exception):
    """Root of every error gaia_actors raises on purpose."""

    exit_code: int = EXIT_FAILED


class ConfigError(GaiaError):
    """A configuration problem, naming the file, the key and what was expected."""

    exit_code = EXIT_USAGE

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class DaemonError(GaiaError):
    """The daemon cannot start or keep running."""


class LockHeld(DaemonError):
    exit_code = EXIT_USAGE

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


class UnexpectedReply(GaiaError):
    """An actor answered a query with something else than the record the query promises."""

    def __init__(self, actor: str, query: str, expected: str, got: str) -> None:
        self.actor = actor
        super().__init__(f"{actor} answered {query} with a {got}, not a {expected}")


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
    exit_code = EXIT_UNREACHABLE

    def __init__(self, socket_path: str, detail: str = "") -> None:
        self.socket_path = socket_path
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"no gaia daemon answers on {socket_path}{extra}; start one with: python run.py"
        )


class TemplateError(GaiaError):
    """A ``{name}`` template that cannot be expanded: an unknown name or a lone brace."""


class UsageError(GaiaError):
    """A command was called with an unknown, missing or unconvertible argument."""

    exit_code = EXIT_USAGE

    def __init__(self, command: str, problem: str, param: str = "") -> None:
        self.command = command
        self.param = param
        self.problem = problem
        where = f"{command} {param}" if param else command
        super().__init__(f"{where}: {problem}")

"""Child processes: spawn in their own group, watch, stop, adopt, run a command with a timeout.

Shared by the environments (long-running services), the pipeline stages and the improvement
cycle (commands with a deadline). Everything here is synchronous and thread-based; the actors
turn the callbacks into messages.

Why the pieces look the way they do:

- Every child starts with ``start_new_session=True`` and is signalled through its process
  group, so grandchildren die with it (supervisord ``stopasgroup``/``killasgroup``). When the
  leader exits, whatever is left of its group is SIGKILLed too (systemd
  ``KillMode=control-group``): a half-dead service must not keep its port.
- Exits are seen by one thread for all processes, blocked in ``epoll`` on their pidfds
  (``exits``), ~2 ms here, instead of polling or a thread per process (where the kernel has
  no pidfd: a thread blocked in ``wait()``, or polling /proc for adopted processes).
- A service's output goes through a pipe to the *log pump process*
  (``environments/logfiles.py`` run as a script), not to a thread of the daemon: the pump
  outlives a daemon restart or SIGKILL, so an adopted service keeps a reader on its stdout
  instead of dying of EPIPE (the runit/svlogd model). One pump serves every service of a
  state directory: each pipe's read end is handed to it over a Unix socket (SCM_RIGHTS),
  so a service costs no process besides itself. Writing straight to a file the daemon
  rotates would need copytruncate, which loses what is written between the copy and the
  truncate; the pump rotates losslessly on line boundaries.
  Stage commands, which never outlive the daemon, are read by a thread into a bounded tail.
- A pid file records the pid *and* the process start time (``/proc/<pid>/stat`` field 22), so a
  restarted daemon never adopts an unrelated process that reused the pid (pid_max is 32768 here).

Its errors, ``ProcessError`` and its subclasses, are drawn in the tree of ``gaia_actors.errors``.

The modules: ``spawning`` (a child in its own group), ``handles`` (watch, signal, stop),
``exits`` (the one exit watcher),
``running`` (run with a timeout), ``output`` (in memory, captured, or through the log pump),
``adoption``, ``pidfiles``, ``proc`` (what /proc tells) and ``errors``.
"""

from gaia_actors.process.adoption import POLL_INTERVAL, AdoptedProcess, adopt
from gaia_actors.process.errors import PidFileError, ProcessError, SpawnError, StopError
from gaia_actors.process.handles import KILL_TIMEOUT, Child
from gaia_actors.process.output import (
    DEFAULT_LOG_RETENTION_DAYS,
    DEFAULT_TAIL_CHARS,
    DRAIN_TIMEOUT,
    LogSink,
    prune_logs,
    read_log_tail,
    start_log_pump,
)
from gaia_actors.process.pidfiles import (
    PidRecord,
    fsync_dir,
    read_pidfile,
    remove_pidfile,
    write_atomic,
    write_pidfile,
)
from gaia_actors.process.proc import ProcStats, is_same_process, proc_start_time, proc_stats
from gaia_actors.process.running import RunResult, run
from gaia_actors.process.spawning import spawn

__all__ = [
    "DEFAULT_LOG_RETENTION_DAYS",
    "DEFAULT_TAIL_CHARS",
    "DRAIN_TIMEOUT",
    "KILL_TIMEOUT",
    "POLL_INTERVAL",
    "AdoptedProcess",
    "Child",
    "LogSink",
    "PidFileError",
    "PidRecord",
    "ProcStats",
    "ProcessError",
    "RunResult",
    "SpawnError",
    "StopError",
    "adopt",
    "fsync_dir",
    "is_same_process",
    "proc_start_time",
    "proc_stats",
    "prune_logs",
    "read_log_tail",
    "read_pidfile",
    "remove_pidfile",
    "run",
    "spawn",
    "start_log_pump",
    "write_atomic",
    "write_pidfile",
]

"""Process exit codes of the demo service (the orchestrator tells failures apart by them)."""

from __future__ import annotations

EXIT_OK = 0  # stopped by SIGTERM/SIGINT
EXIT_CRASH = 1  # crashed on purpose (crash_on_start, exit_after) or the server loop failed
EXIT_CONFIG = 2  # bad environment variable or fault knob; message on stderr
EXIT_MIGRATION = 3  # a schema migration failed; message on stderr names the file
EXIT_LISTEN = 4  # cannot listen on HOST:PORT (port busy, bad address)

"""The bundled demo service that gaia_actors runs as dev, staging and prod.

A small threaded HTTP service (the standard library only: ``http.server`` + ``sqlite3``)
with an items API, ``/health``, ``/metrics`` and fault knobs. It must run standalone from a
copy of the ``demo/`` directory, so nothing here imports ``gaia_actors``.

Modules, leaves first::

    exitcodes  the process exit codes
    config     environment variables -> Settings
    faults     fault knobs: parsing (FAULT env var / file, admin JSON) and the live state
    logs       JSON-lines event log on stdout
    db         the SQLite database: open, migrations, items, health check
    metrics    the Prometheus metrics of one process and their text format
    api        routing and request validation (no sockets)
    httpd      the threaded HTTP server and its request handler
    app        main(): signals, configuration, start-only faults (light imports only)
    service    run(): database, server, serve, graceful shutdown
"""

from __future__ import annotations

__version__ = "1.0.0"

"""The control server and what it serves: the daemon's Unix socket (``server``), a client's
threads (``connection``), the frames read and answered (``frames``), the operations (``ops``)
and event streams (``streams``); the wire protocol (``protocol``) and the registry of operator
commands (``commands``, with the daemon's own in ``core_commands``), which the core and the
capabilities use too."""

"""The control server and what it serves: the daemon's Unix socket (``server``), its wire
protocol (``protocol``) and the registry of operator commands (``commands``, with the daemon's
own in ``core_commands``)."""

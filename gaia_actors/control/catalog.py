"""The operator commands by module: which module registers each command, and the title its
group has in --help and the REPL's help, in the order listed there.

Importing a command module registers its commands (``@command``), and costs whatever that
module imports: for most of them, a capability's actors and their libraries. A command line
loads only the module of the command it runs (``load``), so ``status`` does not import the
whole application; the daemon, --help and the REPL load every module (``load_all``). A test
checks that each group names exactly the commands its module registers.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from gaia_actors.control import commands
from supervisors.records import record


@record
class CommandGroup:
    module: str  # the module whose import registers the commands
    title: str
    names: tuple[str, ...]


GROUPS: tuple[CommandGroup, ...] = (
    CommandGroup(
        "gaia_actors.monitoring.commands",
        "Health and traffic",
        ("status", "health", "load-balance", "incidents"),
    ),
    CommandGroup(
        "gaia_actors.pipeline.commands",
        "Promotions",
        ("promote", "cancel", "history", "pipeline-status"),
    ),
    CommandGroup(
        "gaia_actors.environments.commands",
        "Releases, data and processes",
        ("backup", "restore", "rollback", "deploy", "build", "logs", "backups", "kill", "reset"),
    ),
    CommandGroup("gaia_actors.improve.cli_commands", "Self-improvement", ("improve",)),
    CommandGroup("gaia_actors.improve.marker_commands", "Code search", ("markers",)),
    CommandGroup(
        "gaia_actors.alerts.commands",
        "Alerts and silences",
        ("alerts", "silence", "silences", "unsilence"),
    ),
    CommandGroup(
        "gaia_actors.control.core_commands",
        "The daemon, its actors and fault injection",
        ("actors", "resources", "messages", "crash", "hang"),
    ),
)
for _group in GROUPS:
    commands.add_group(_group.module, _group.title)

MODULE_OF: dict[str, str] = {name: group.module for group in GROUPS for name in group.names}

# The capabilities' modules that declare messages of their own, outside gaia_actors.messages
# (what an actor tells itself or its helpers). A command module imports none of them; loaded
# with every command, they let help and the REPL describe and complete every message the
# daemon builds by name.
MESSAGE_MODULES = (
    "gaia_actors.alerts.messages",
    "gaia_actors.environments.notices",
    "gaia_actors.pipeline.reports",
)


def load(names: Iterable[str]) -> bool:
    """Register the commands ``names`` by importing their modules; False (and nothing
    loaded) when one of them is not listed here."""
    wanted = list(names)
    if any(name not in MODULE_OF for name in wanted):
        return False
    for module in dict.fromkeys(MODULE_OF[name] for name in wanted):
        importlib.import_module(module)
    return True


def load_all() -> None:
    """Register every command (the daemon serves them all; help lists them all), and every
    message declared beside a capability's actors."""
    for module in (*(group.module for group in GROUPS), *MESSAGE_MODULES):
        importlib.import_module(module)

"""A capability whose actor can never start: used to test the root's escalation."""

from __future__ import annotations

from typing import Any

from gaia_actors.actor import GaiaActor
from supervisors import ChildSpec


class Broken(GaiaActor):
    def on_start(self) -> None:
        raise RuntimeError("cannot start: test capability")


def child_specs(settings: Any, registry: Any, listener: Any, config: Any) -> list[ChildSpec]:
    return [ChildSpec("broken", Broken.start)]

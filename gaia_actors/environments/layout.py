"""One environment's directories, commands and health URL: the core's ``gaia_actors.layout``,
named here too for the environments package and its users."""

from __future__ import annotations

from gaia_actors.layout import Layout, port_in_use

__all__ = ["Layout", "port_in_use"]

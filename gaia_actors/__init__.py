"""gaia_actors: keeps a service's dev, staging and prod environments alive, as Pykka actors."""

from __future__ import annotations

__version__ = "0.1.0"

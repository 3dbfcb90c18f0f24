"""Entry point of the demo service: ``python server.py`` (configured by environment variables).

Runs from any copy of this directory: it puts its own folder first on sys.path, so the
``demosvc`` package and ``migrations/`` beside it are the ones used.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from demosvc.app import main  # noqa: E402 - needs the sys.path entry above

if __name__ == "__main__":
    sys.exit(main())

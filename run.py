#!/usr/bin/env python3
"""python run.py [command]: the gaia daemon and its operator commands (see --help)."""

import sys

from gaia_actors.console.cli import main

if __name__ == "__main__":
    sys.exit(main())

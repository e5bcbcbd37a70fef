"""Entry point of ``python -m stn_explore.data``; the code lives in :mod:`stn_explore.experiments.data`."""

import sys

from .experiments.data import main

if __name__ == "__main__":
    sys.exit(main())

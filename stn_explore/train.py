"""Entry point of ``python -m stn_explore.train``; the code lives in :mod:`stn_explore.experiments.train`."""

import sys

from .experiments.train import main

if __name__ == "__main__":
    sys.exit(main())

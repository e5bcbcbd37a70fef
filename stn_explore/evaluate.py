"""Entry point of ``python -m stn_explore.evaluate``; the code lives in :mod:`stn_explore.experiments.evaluate`."""

import sys

from .experiments.evaluate import main

if __name__ == "__main__":
    sys.exit(main())

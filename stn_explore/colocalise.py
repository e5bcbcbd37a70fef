"""Entry point of ``python -m stn_explore.colocalise``; the code lives in :mod:`stn_explore.experiments.colocalise`."""

import sys

from .experiments.colocalise import main

if __name__ == "__main__":
    sys.exit(main())

"""stn_explore — Spatial Transformer Networks (Jaderberg et al., 2015) in PyTorch.

Convention (see CONVENTIONS.md): images ``(B, C, H, W)`` in [0, 1]; coordinates normalised
to [-1, 1] with ``align_corners=False``, points ``(x, y)`` with x right and y down; every
transform maps target (output) coordinates to source (input) coordinates, as eq. (1).

Layers (imports point one way only: explorer → experiments → core):

* :mod:`stn_explore.core` — the paper's section 3: grid generators, sampler, the
  :class:`SpatialTransformer` module (needs only torch). Re-exported here.
* :mod:`stn_explore.experiments` — data, distortion recipes, models, checkpoints, training,
  evaluation and co-localisation (section 4 and the appendix); their CLIs.
* :mod:`stn_explore.explorer` — what the app's pages compute (no Streamlit): the playground,
  the CNN vs ST-CNN comparison, plotly figures.
"""

from .core import *  # noqa: F403  (the public API of the core, listed in core.__all__)
from .core import __all__ as _core_all

__version__ = "0.1.0"
__all__ = [*_core_all, "__version__"]

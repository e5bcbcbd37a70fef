"""stn_explore.core — the paper's section 3: grid generators, the sampler and the spatial
transformer module. Needs only torch; imports nothing else of stn_explore.

Convention (see CONVENTIONS.md): images ``(B, C, H, W)`` in [0, 1]; coordinates normalised
to [-1, 1] with ``align_corners=False``, points ``(x, y)`` with x right and y down; every
transform maps target (output) coordinates to source (input) coordinates, as eq. (1).
"""

from . import geometry
from .geometry import *  # noqa: F403  (every name in geometry.__all__)
from .sampling import bilinear_sample_reference, outside_fraction, sample
from .transformer import (
    LocalisationConv,
    LocalisationFC,
    SpatialTransformer,
    flatten_params,
    n_params,
    unflatten_params,
    warp,
)

__all__ = [*geometry.__all__, "bilinear_sample_reference", "outside_fraction", "sample", "LocalisationConv",
           "LocalisationFC", "SpatialTransformer", "flatten_params", "n_params", "unflatten_params", "warp"]

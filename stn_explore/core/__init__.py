"""stn_explore.core — the paper's section 3: grid generators, the sampler and the spatial
transformer module. Needs only torch; imports nothing else of stn_explore.

Convention (see CONVENTIONS.md): images ``(B, C, H, W)`` in [0, 1]; coordinates normalised
to [-1, 1] with ``align_corners=False``, points ``(x, y)`` with x right and y down; every
transform maps target (output) coordinates to source (input) coordinates, as eq. (1).
"""

from .geometry import (
    TRANSFORM_KINDS,
    AffineParams,
    affine_grid,
    affine_transform_points,
    attention_theta,
    base_grid,
    compose,
    control_points,
    frame_corners,
    homography_from_corners,
    homography_from_points,
    identity_params,
    invert,
    make_grid,
    normalized_to_pixel,
    params_from_theta,
    pixel_to_normalized,
    projective_grid,
    projective_min_denominator,
    projective_transform_points,
    theta_from_params,
    theta_to_pixel_matrix,
    to_homogeneous,
    tps_grid,
    tps_transform_points,
    transform_points,
)
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


__all__ = [
    "AffineParams",
    "LocalisationConv",
    "LocalisationFC",
    "SpatialTransformer",
    "TRANSFORM_KINDS",
    "affine_grid",
    "affine_transform_points",
    "attention_theta",
    "base_grid",
    "bilinear_sample_reference",
    "compose",
    "control_points",
    "flatten_params",
    "frame_corners",
    "homography_from_corners",
    "homography_from_points",
    "identity_params",
    "invert",
    "make_grid",
    "n_params",
    "normalized_to_pixel",
    "outside_fraction",
    "params_from_theta",
    "pixel_to_normalized",
    "projective_grid",
    "projective_min_denominator",
    "projective_transform_points",
    "sample",
    "theta_from_params",
    "theta_to_pixel_matrix",
    "to_homogeneous",
    "tps_grid",
    "tps_transform_points",
    "transform_points",
    "unflatten_params",
    "warp",
]

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

The core's names are re-exported lazily (PEP 562): ``stn.warp`` imports torch and the core on
first use, while ``import stn_explore.experiments.mnist`` (or the app's first view) does not
pay for torch. ``from stn_explore import *`` and ``dir(stn_explore)`` list the core's API.
"""

__version__ = "0.1.0"

#: the layers and CLI entry points are submodules, never looked up in the core
_SUBMODULES = frozenset({"core", "experiments", "explorer", "colocalise", "data", "evaluate", "train"})


def _core():
    from . import core

    return core


def __getattr__(name: str):
    if name == "__all__":
        return [*_core().__all__, "__version__"]
    if name.startswith("__") or name in _SUBMODULES:
        raise AttributeError(f"module 'stn_explore' has no attribute {name!r}")
    core = _core()
    if name in core.__all__:
        value = getattr(core, name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'stn_explore' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_core().__all__})

"""stn_explore.experiments — the paper's experiments (section 4 and the appendix): MNIST
sources, the distortion recipes, the models, self-describing checkpoints, training,
evaluation and co-localisation, with one CLI per job (``python -m stn_explore.train``,
``.evaluate``, ``.colocalise``, ``.data``); the training CLIs also run data-parallel under
``torchrun`` (:mod:`.distributed`). Imports :mod:`stn_explore.core`, never the explorer.
"""

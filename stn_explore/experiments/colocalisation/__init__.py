"""Co-localisation (paper appendix, Table 5): a spatial transformer learns, without box
labels, to find the common object — one MNIST digit class — in 84×84 images.

Pieces (coordinates as in CONVENTIONS.md; boxes in pixels, pixel-centre convention):

* **images** — the ``coloc`` recipe of :mod:`stn_explore.experiments.distortions`: a 28×28 digit of the
  chosen class pasted at a random position of an 84×84 canvas, optionally with ``noise``
  6×6 clutter patches cut from *other* digits (any class). The ground-truth box of the
  pasted frame is used only for evaluation, never for training.
* :class:`ColocNet` — a localisation network finds the window: by default
  (:class:`HeatmapLocaliser`) a fully convolutional net scores every window position on a
  2× downsampled view and the window goes to the softmax-weighted mean position; the
  alternative (``localiser="regress"``, needed for the ``attention``/``affine`` transforms)
  is a CNN whose fully connected head regresses the parameters. The spatial transformer
  samples a 28×28 crop ``I^T``; an embedding CNN ``e(·)`` (LeNet-style) maps crops to unit
  vectors.
* :func:`triplet_hinge` — the paper's loss over pairs ``n ≠ m`` of a batch of one class:
  ``max(0, ‖e(I_n^T) − e(I_m^T)‖² − ‖e(I_n^T) − e(I_n^rand)‖² + α)`` with ``I_n^rand`` a random
  28×28 crop of ``I_n``: crops of the set must look more alike than a crop and a random
  patch of its own image (of the same shape, :func:`random_crops_like`).
* :func:`crop_quads` maps the transformer's output frame into the input (a quadrilateral in
  general), :func:`quad_box_iou` scores it against the ground-truth box; a box is correct
  when IoU > 0.5.

:func:`train` runs the experiment, recording the boxes of a fixed panel of held-out images,
the loss and the held-out accuracy every ``record_every`` iterations.

Why a curriculum: started at a 28×28 window, every variant we tried (fixed-size or zooming
crops, uniform or nearby random crops, margins 0.2/1, the embedding trained, slowed, frozen or
pre-trained as a classifier) drifted onto empty background — an empty crop equals every other
empty crop, so the pair term vanishes there, and bilinear sampling gives no gradient back
toward the digit. Starting with a window 0.9 of the image (every crop holds the whole digit,
so crops can only agree by *centring* it) and shrinking it to 28×28 over the first 800
iterations, with ``I^rand`` one to 1½ window widths away, makes the windows follow the digit.
Once on the digit, the windows stopped getting more precise: with ``I^rand`` a window width
away, a crop a few pixels off the common position already satisfies the margin, so the hinge
is zero and nothing pulls it further. A precision stage (:func:`negative_offset_at`) moves
``I^rand`` to ½–1 window widths away, overlapping the window, which makes a misaligned crop
resemble its own random crop. The clean recipe compares each crop with four random crops
of its image (the hinge averaged over them, ``negatives``) instead of the paper's one: with
one, the held-out accuracy swung by tens of points between records and a run ended wherever
the swing was when the learning rate dropped (clean digits 3 and 5 ended at 84.5% and 66.1%
with ``--negatives 1 --lr-drop 2000``). With clutter, four made the windows worse (noisy
digits 5 and 7: 4.0% and 31.9% with ``--negatives 4``, 56.6% and 48.5% with one), so the
noisy recipe keeps the paper's one. The noisy variant adds a clutter curriculum: with 16
clutter pieces from the start the windows collapsed (≈ 2% correct in our trials), so it first
shrinks the window on clean images and then raises the clutter from 0 to 16 pieces over the second sixth
of the run (:func:`clutter_at`). :func:`recipe` holds both schedules. The curricula are ours,
not the paper's; the loss is the paper's.

Why a heatmap localiser: with the regressing localiser (every finding above was made with
it) the windows reached the digits but stayed imprecise — the boxes counted wrong were a few
pixels too far off (median IoU 0.45), and in clutter even the correct ones sat ≈ 5 pixels from
the digit's centre: 95.5–99.4% clean, 48.5–87.4% noisy. A fully connected head has to learn
the window position separately for every place a digit can be; a convolutional score map
applies the same detector everywhere, and its soft-argmax is exact to a fraction of a cell.
With the same recipes and seeds, every clean digit reached 100% and every noisy one 99.6–100%
(with the batch norm and the retry below), at ≈ 1.4× the training time.

Runs that fail: a noisy run can end with its windows on no common object — digit 6 when a
whole layer of the score map went silent (fixed by batch norm, ``heatmap_norm``, on in the
noisy recipe), digit 7 (with batch norm) when the clutter arrived. Such a run is plain from the
loss alone, without labels: its training loss ended at ≈ 0.2 and 0.38, a settled run's at ≤ 0.01
(:func:`final_training_loss`). The CLI therefore trains again with the next seed when the
final loss is above α/4 (``--retries``, default 2) and keeps the attempt with the lowest loss;
the checkpoint lists the attempts.

CLI: ``python -m stn_explore.colocalise``; page: ``/colocalisation``.
"""

from __future__ import annotations

from .boxes import (
    ATTENTION_START,
    CANVAS,
    COLOC_TRANSFORMS,
    CROP,
    NOISY,
    crop_quads,
    n_raw_params,
    params_to_theta,
    quad_box_iou,
)
from .curriculum import (
    RECIPES,
    ColocConfig,
    clutter_at,
    crop_scale_at,
    live_config,
    negative_offset_at,
    recipe,
)
from .data import class_pool, coloc_config, held_out_set, localisation_accuracy, make_images, predict_quads
from .live import LiveRun
from .loss import random_crops_like, triplet_hinge
from .model import LOCALISERS, ColocArgs, ColocNet, Embedding, HeatmapLocaliser
from .recording import empty_recording, load_recording, recording_arrays
from .report import paper_table, run_summary
from .runs import (
    PAPER_CLEAN,
    PAPER_NOISY_RANGE,
    RUNS_FOLDER,
    attempts_note,
    collect_runs,
    load_run,
    run_path,
    run_view,
    runs_folder,
)
from .training import (
    build_coloc_model,
    compact,
    evaluate_checkpoint,
    final_training_loss,
    recording_name,
    train,
)

__all__ = [
    "paper_table",
    "run_summary",
    "ATTENTION_START",
    "CANVAS",
    "COLOC_TRANSFORMS",
    "CROP",
    "ColocArgs",
    "ColocConfig",
    "ColocNet",
    "Embedding",
    "HeatmapLocaliser",
    "LOCALISERS",
    "LiveRun",
    "NOISY",
    "PAPER_CLEAN",
    "PAPER_NOISY_RANGE",
    "RECIPES",
    "RUNS_FOLDER",
    "attempts_note",
    "build_coloc_model",
    "class_pool",
    "clutter_at",
    "collect_runs",
    "coloc_config",
    "compact",
    "crop_quads",
    "crop_scale_at",
    "empty_recording",
    "evaluate_checkpoint",
    "final_training_loss",
    "held_out_set",
    "live_config",
    "load_recording",
    "load_run",
    "localisation_accuracy",
    "make_images",
    "n_raw_params",
    "negative_offset_at",
    "params_to_theta",
    "predict_quads",
    "quad_box_iou",
    "random_crops_like",
    "recipe",
    "recording_arrays",
    "recording_name",
    "run_path",
    "run_view",
    "runs_folder",
    "train",
    "triplet_hinge",
]

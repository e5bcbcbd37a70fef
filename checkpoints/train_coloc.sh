#!/usr/bin/env bash
# The exact commands that made the co-localisation recordings (paper appendix, Table 5).
# Run from the repository root with the 10,000 MNIST training digits available, e.g.
#   STN_DATA_DIR=../shared/data/mnist bash checkpoints/train_coloc.sh
# Every run uses the CLI's default recipe (stn_explore.experiments.colocalisation.recipe): the heatmap
# localiser (a convolutional score map, the window at its softmax-weighted mean), batch 32, Adam 1e-3:
#   clean  2,400 iterations, the hinge averaged over four random crops per image: the window
#          shrinks from 0.9 of the image to 28×28 over the first 800;
#          lr ÷10 from 1,200; random crops next to the window from 1,600 (precision stage).
#   noisy  4,800 iterations, one random crop per image, batch norm in the score map: the same
#          shrinking window on clean images first; clutter rises from 0 to 16 pieces
#          over 800–1,600; precision stage from 1,600 at lr ÷10.
# A run whose final training loss stays above margin/4 (no common object found; no labels used)
# is trained again with the next seed, up to twice (--retries 2, the default); the lowest loss is kept.
# About 5½ (clean) to 8½ (noisy) minutes per run at 1 thread, two runs in parallel on 2 cores; finished runs are skipped, interrupted ones resume.
# --compact stores float16 weights and re-measures the accuracy.
# Split the work between processes with e.g. DIGITS="0 1 2 3 4" and NOISES="16".
set -uo pipefail
THREADS=${THREADS:-1}
DIGITS=${DIGITS:-0 1 2 3 4 5 6 7 8 9}
NOISES=${NOISES:-0 16}
for noise in $NOISES; do
  for digit in $DIGITS; do
    python -m stn_explore.colocalise --digit "$digit" --noise "$noise" --threads "$THREADS" \
      --resume --compact --no-progress || echo "digit $digit noise $noise ended with status $?"
  done
done

#!/usr/bin/env bash
# The exact commands that made the co-localisation recordings (paper appendix, Table 5).
# Run from the repository root with the 10,000 MNIST training digits available, e.g.
#   STN_DATA_DIR=../shared/data/mnist bash checkpoints/train_coloc.sh
# Clean: 2,000 iterations of batch 32 (window shrinks from 0.9 of the image to 28×28 over the
# first 800, lr ÷10 after 1,800). Noisy: the same start on clean images, then the clutter
# rises from 0 to 16 pieces over iterations 800–1,600; 2,400 iterations, lr ÷10 after 2,200.
# About 2 minutes per run at 1 thread; finished runs are skipped, interrupted ones resume.
# --compact stores float16 weights and re-measures the accuracy.
# Split the work between processes with e.g. DIGITS="0 1 2 3 4" and NOISES="16".
set -uo pipefail
THREADS=${THREADS:-1}
DIGITS=${DIGITS:-0 1 2 3 4 5 6 7 8 9}
NOISES=${NOISES:-0 16}
for noise in $NOISES; do
  extra=()
  if [ "$noise" != 0 ]; then
    extra=(--iterations 2400 --clutter-from 800 --clutter-ramp 800 --lr-drop 2200)
  fi
  for digit in $DIGITS; do
    python -m stn_explore.colocalise --digit "$digit" --noise "$noise" --threads "$THREADS" "${extra[@]}" \
      --resume --compact --no-progress || echo "digit $digit noise $noise ended with status $?"
  done
done

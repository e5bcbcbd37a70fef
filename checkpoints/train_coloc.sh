#!/usr/bin/env bash
# The exact commands that made the co-localisation recordings (paper appendix, Table 5).
# Run from the repository root with the 10,000 MNIST training digits available, e.g.
#   STN_DATA_DIR=../shared/data/mnist bash checkpoints/train_coloc.sh
# Each run: 2,000 iterations of batch 32 (window shrinks from 0.9 of the image to 28×28 over
# the first 800, lr ÷10 after 1,800), about 1½ minutes at 1 thread; finished runs are skipped,
# interrupted ones resume. --compact stores float16 weights and re-measures the accuracy.
set -uo pipefail
THREADS=${THREADS:-1}
for noise in 0 16; do
  for digit in 0 1 2 3 4 5 6 7 8 9; do
    python -m stn_explore.colocalise --digit "$digit" --noise "$noise" --threads "$THREADS" \
      --resume --compact --no-progress || echo "digit $digit noise $noise ended with status $?"
  done
done

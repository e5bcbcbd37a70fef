#!/usr/bin/env bash
# The exact commands that made the MNIST-addition checkpoints (paper Table 4).
# Run from the repository root with the 10,000 MNIST training digits available, e.g.
#   STN_DATA_DIR=../shared/data/mnist bash checkpoints/train_addition.sh
# Every command resumes, so re-running continues an interrupted run; a finished run is skipped.
# Fully connected models are cheap per epoch but learn the sum slowly: 200 epochs (lr ÷10
# after epochs 120 and 170); the convolutional ones 50 epochs.
set -uo pipefail
THREADS=${THREADS:-1}
run() { # epochs model [transform]
  local name="checkpoints/addition_${2}${3:+_$3}.pt"
  python -m stn_explore.train --task addition --model "$2" ${3:+--transform "$3"} --epochs "$1" \
    --threads "$THREADS" --resume --no-progress --out "$name" \
    || echo "run $name ended with status $?"
}
run 200 2st-fcn affine
run 200 fcn
run 200 st-fcn affine
run 200 2st-fcn projective
run 200 2st-fcn tps
run 50 cnn
run 50 2st-cnn affine

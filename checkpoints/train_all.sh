#!/usr/bin/env bash
# The exact commands that made the classifier checkpoints in this folder (issue: Table 1).
# Run from the repository root with the 10,000 MNIST training digits available, e.g.
#   STN_DATA_DIR=../shared/data/mnist bash checkpoints/train_all.sh [queue]
# queue: "a", "b" (two halves, to run in parallel with one thread each) or "all" (default).
# Every command resumes, so re-running continues an interrupted run; a finished run is skipped.
set -uo pipefail
EPOCHS=${EPOCHS:-50}
THREADS=${THREADS:-1}
run() { # task model [transform [extra recipe flags...]]
  local task=$1 model=$2 transform=${3:-}; shift $(( $# < 3 ? $# : 3 ))
  local name="checkpoints/${task}_${model}${transform:+_$transform}.pt"
  python -m stn_explore.train --task "$task" --model "$model" ${transform:+--transform "$transform"} \
    --epochs "$EPOCHS" "$@" --threads "$THREADS" --resume --no-progress --out "$name" \
    || echo "run $name ended with status $?"
}
# The transformers that must undo rotation or find the digit in clutter use a curriculum and
# (clutter) a zooming output, Adam and a pooled localisation input: see checkpoints/README.md,
# "Transformers that do what the paper shows". Their --epochs come after $EPOCHS and win.
ROT="--epochs 80 --ramp-epochs 30"            # R: the rotation range grows over 30 of 80 epochs
# RTS (±45°): rotation, scale and placement grow over 40 of 100 epochs, Adam, and while they grow
# the classifier learns at 0.02× (affine, TPS) / 0.1× (projective) so the transformer takes them up
RTS="--epochs 100 --ramp-epochs 40 --optimizer adam --lr 0.001 --loc-lr-scale 0.5 --ramp-head-lr-scale 0.02"
RTS_PROJ="--epochs 100 --ramp-epochs 40 --optimizer adam --lr 0.001 --loc-lr-scale 0.5 --ramp-head-lr-scale 0.1"
CLUTTER="--epochs 140 --optimizer adam --lr 0.001 --loc-lr-scale 0.5 --st-out-size 36 --loc-pool 2 --ramp-epochs 12 --st-init-scale 0.5"
queue_a() {
  run rts cnn; run rts st-cnn affine $RTS
  run r cnn; run r st-cnn affine $ROT
  run p cnn; run p st-cnn affine
  run e cnn
}
queue_b() {
  run cluttered cnn; run cluttered st-cnn affine $CLUTTER
  run e st-cnn affine
  run rts fcn; run rts st-fcn affine
  run rts st-cnn projective $RTS_PROJ; run rts st-cnn tps $RTS
}
case "${1:-all}" in
  a) queue_a ;; b) queue_b ;; all) queue_a; queue_b ;;
  *) echo "usage: $0 [a|b|all]"; exit 2 ;;
esac

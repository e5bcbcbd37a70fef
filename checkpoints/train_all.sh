#!/usr/bin/env bash
# The exact commands that made the classifier checkpoints in this folder (issue: Table 1).
# Run from the repository root with the 10,000 MNIST training digits available, e.g.
#   STN_DATA_DIR=../shared/data/mnist bash checkpoints/train_all.sh [queue]
# queue: "a", "b" (two halves, to run in parallel with one thread each) or "all" (default).
# Every command resumes, so re-running continues an interrupted run; a finished run is skipped.
set -uo pipefail
EPOCHS=${EPOCHS:-50}
THREADS=${THREADS:-1}
run() { # task model [transform]
  local name="checkpoints/${1}_${2}${3:+_$3}.pt"
  python -m stn_explore.train --task "$1" --model "$2" ${3:+--transform "$3"} --epochs "$EPOCHS" \
    --threads "$THREADS" --resume --no-progress --out "$name" \
    || echo "run $name ended with status $?"
}
queue_a() {
  run rts cnn; run rts st-cnn affine
  run r cnn; run r st-cnn affine
  run p cnn; run p st-cnn affine
  run e cnn
}
queue_b() {
  run cluttered cnn; run cluttered st-cnn affine
  run e st-cnn affine
  run rts fcn; run rts st-fcn affine
  run rts st-cnn projective; run rts st-cnn tps
}
case "${1:-all}" in
  a) queue_a ;; b) queue_b ;; all) queue_a; queue_b ;;
  *) echo "usage: $0 [a|b|all]"; exit 2 ;;
esac

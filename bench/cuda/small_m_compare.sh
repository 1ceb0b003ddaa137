#!/usr/bin/env bash
# Before/after of the small-m W4A16 kernels on the GPU machine (docs/results/gpu.md, "ncu of
# the small-m kernels"), every run in the same call: for each m of MS and each x order of
# ORDERS (AWQ_W4A16_XS_ORDER), the sweep of the register-streaming configurations
# (bench_cuda_w4a16 lsweep: the xs variants print as mt/wk/wn/rt x); then the table with
# AWQ_W4A16_XSMEM=0 (x read from L2 by each warp: the kernels before the xs variants), the
# default with each order, and AWQ_W4A16_XSMEM=0 again (the baseline's run-to-run spread).
#   BUILD=build/cuda LOG=out MS="1 2 4 8" ORDERS="0 1" REPS=20 bench/cuda/small_m_compare.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/cuda}
LOG=${LOG:-$BUILD/logs}
MS=${MS:-"1 2 4 8"}
ORDERS=${ORDERS:-0}
REPS=${REPS:-20}
SWEEP_REPS=${SWEEP_REPS:-30}
mkdir -p "$LOG"
for o in $ORDERS; do
  for m in $MS; do
    echo "== sweep m=$m order $o"
    AWQ_W4A16_XS_ORDER=$o "$BUILD/bench_cuda_w4a16" "$SWEEP_REPS" lsweep "" "$m" 2>&1 | grep '^sweep' |
      sed "s/^sweep/sweep order=$o/" | tee -a "$LOG/small_m_sweep.log"
  done
done
table() {  # label, then environment assignments
  local label=$1
  shift
  echo "== $label"
  for m in $MS; do
    env "$@" "$BUILD/bench_cuda_w4a16" "$REPS" - "" "$m" 2>&1 | grep -E '^\| [a-z]' | sed "s/^/$label /" | tee -a "$LOG/small_m_tables.log"
  done
}
table before AWQ_W4A16_XSMEM=0
for o in $ORDERS; do table "xs-order$o" AWQ_W4A16_XSMEM=1 AWQ_W4A16_XS_ORDER=$o; done
table before-again AWQ_W4A16_XSMEM=0

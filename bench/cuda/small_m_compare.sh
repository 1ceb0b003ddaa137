#!/usr/bin/env bash
# Before/after of the small-m W4A16 kernels on the GPU machine (docs/results/gpu.md, "ncu of
# the small-m kernels"), every run in the same call. For each m of MS: bench_cuda_w4a16 lsweep
# (every register-streaming configuration, the xs variants printed as mt/wk/wn/rt x, then the
# table row of the default kernels) into small_m_sweep.log and small_m_tables.log; around it
# the table with AWQ_W4A16_XSMEM=0 (x read from L2 by each warp: the kernels before the xs
# variants), before and after, so the baseline's run-to-run spread shows.
#   BUILD=build/cuda LOG=out MS="1 2 4 8" REPS=20 bench/cuda/small_m_compare.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/cuda}
LOG=${LOG:-$BUILD/logs}
MS=${MS:-"1 2 4 8"}
REPS=${REPS:-20}
mkdir -p "$LOG"
run() {  # label, then environment assignments, then the bench's arguments after reps
  local label=$1 env_args=$2
  shift 2
  for m in $MS; do
    env $env_args "$BUILD/bench_cuda_w4a16" "$REPS" "$@" "" "$m" >"$LOG/.out" 2>&1
    grep '^sweep' "$LOG/.out" | sed "s/^sweep/sweep $label/" >>"$LOG/small_m_sweep.log"
    grep -E '^\| [a-z]' "$LOG/.out" | sed "s/^/$label /" | tee -a "$LOG/small_m_tables.log"
  done
}
run before "AWQ_W4A16_XSMEM=0" -
run after "AWQ_W4A16_XSMEM=1" lsweep
run before-again "AWQ_W4A16_XSMEM=0" -
rm -f "$LOG/.out"

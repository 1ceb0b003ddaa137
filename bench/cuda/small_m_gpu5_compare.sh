#!/usr/bin/env bash
# Before/after of the scale-after m = 1 kernels and the m = 9..16 candidates on the GPU machine
# (docs/results/gpu.md, section of branch gpu5), every run in the same call:
#  1. m = 1 table rows of every shape with AWQ_W4A16_SCALE_AFTER=0 (before), =1 (after), =0
#     again (the baseline's run-to-run spread), with the read floor of each shape  -> sa_tables.log
#  2. psweep at m = 1: every register-streaming configuration plain / with PDL        -> sa_sweep.log
#  3. for each m of MS_MID and each shape of MID_SHAPES: lsweep (register-streaming
#     configurations) -> mid_m_sweep.log, and the table row of the dispatch ("auto") and of
#     AWQ_W4A16_KERNEL=tiled (the tiled GEMM's pick: the kernel there before this branch)
#                                                                                      -> mid_m_tables.log
#  4. decode batch 1, PDL on, random Llama-2-7B shape: AWQ_W4A16_SCALE_AFTER=0 / 1, alternated
#     ROUNDS times                                                                     -> sa_decode.log
#   BUILD=build/cuda LOG=out REPS=20 MS_MID="9 10 12 14 16" ROUNDS=2 bench/cuda/small_m_gpu5_compare.sh
#   STEPS="psweep mid" PSWEEP_MS="2 4 8" ...   (only those steps; psweep at those m)
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/cuda}
LOG=${LOG:-$BUILD/logs}
REPS=${REPS:-20}
MS_MID=${MS_MID:-"9 10 12 14 16"}
MID_SHAPES=${MID_SHAPES:-"o_proj down_proj"}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-"m1 psweep mid decode"}  # which of the steps below run
PSWEEP_MS=${PSWEEP_MS:-1}                # the m of step 2
mkdir -p "$LOG"
want() { [[ " $STEPS " == *" $1 "* ]]; }
B="$BUILD/bench_cuda_w4a16"
table() {  # label, AWQ_W4A16_SCALE_AFTER value, m
  AWQ_W4A16_SCALE_AFTER=$2 "$B" "$REPS" - "" "$3" >"$LOG/.out" 2>&1
  grep -E '^(\| [a-z]|read floor)' "$LOG/.out" | sed "s/^/$1 /"
}
want m1 && {
  table before 0 1
  table after 1 1
  table before-again 0 1
} | tee -a "$LOG/sa_tables.log"
for m in $PSWEEP_MS; do
  want psweep && "$B" "$REPS" psweep "" "$m" 2>&1 | grep '^sweep' | tee -a "$LOG/sa_sweep.log"
done
want mid && for m in $MS_MID; do
  for shape in $MID_SHAPES; do
    "$B" "$REPS" lsweep "$shape" "$m" >"$LOG/.out" 2>&1
    grep '^sweep' "$LOG/.out" >>"$LOG/mid_m_sweep.log"
    grep -E '^\| [a-z]' "$LOG/.out" | sed 's/^/auto /' | tee -a "$LOG/mid_m_tables.log"
    AWQ_W4A16_KERNEL=tiled "$B" "$REPS" - "$shape" "$m" 2>&1 | grep -E '^\| [a-z]' | sed 's/^/tiled /' \
      | tee -a "$LOG/mid_m_tables.log"
  done
done
want decode && for r in $(seq "$ROUNDS"); do
  for sa in 0 1; do
    AWQ_W4A16_SCALE_AFTER=$sa "$BUILD/awq_bench_decode" --batch 1 --pdl 1 --rounds 1 2>&1 \
      | grep -E '^\| [0-9]' | sed "s/^/round $r scale_after=$sa /"
  done
done | tee -a "$LOG/sa_decode.log"
rm -f "$LOG/.out"

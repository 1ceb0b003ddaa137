#!/usr/bin/env bash
# Before/after of the cluster-split decode kernels and the m = 9..16 candidates on the GPU
# machine (docs/results/gpu.md, "Cluster split at m = 1"), every run in the same call:
#  1. m = 1 table rows (every shape) with AWQ_W4A16_CLUSTER_SPLIT=0 (before: one block per row
#     tile), =1 (after), =0 again (the baseline's run-to-run spread)  -> cluster_tables.log
#  2. psweep at m = 1: every register-streaming configuration plain / with PDL  -> cluster_sweep.log
#  3. sweep at each m of MS_MID (register-streaming and tiled configurations)     -> mid_m_sweep.log
#     and the table rows of those m (the tiled GEMM's pick vs the legacy column)  -> mid_m_tables.log
#  4. decode batch 1, PDL on, random Llama-2-7B shape: split 0 / 1 (and 1 with the cluster
#     launches without PDL: AWQ_W4A16_CLUSTER_PDL=0), ROUNDS alternations         -> cluster_decode.log
#   BUILD=build/cuda LOG=out REPS=20 MS_MID="9 12 16" ROUNDS=2 bench/cuda/cluster_split_compare.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/cuda}
LOG=${LOG:-$BUILD/logs}
REPS=${REPS:-20}
MS_MID=${MS_MID:-"9 12 16"}
ROUNDS=${ROUNDS:-2}
mkdir -p "$LOG"
B="$BUILD/bench_cuda_w4a16"
table() {  # label, AWQ_W4A16_CLUSTER_SPLIT value, m
  AWQ_W4A16_CLUSTER_SPLIT=$2 "$B" "$REPS" - "" "$3" >"$LOG/.out" 2>&1
  grep -E '^(\| [a-z]|read floor)' "$LOG/.out" | sed "s/^/$1 /"
}
{
  table before 0 1
  table after 1 1
  table before-again 0 1
} | tee -a "$LOG/cluster_tables.log"
"$B" "$REPS" psweep "" 1 2>&1 | grep '^sweep' | tee -a "$LOG/cluster_sweep.log"
for m in $MS_MID; do
  "$B" "$REPS" sweep "" "$m" >"$LOG/.out" 2>&1
  grep '^sweep' "$LOG/.out" >>"$LOG/mid_m_sweep.log"
  grep -E '^\| [a-z]' "$LOG/.out" | tee -a "$LOG/mid_m_tables.log"
done
for r in $(seq "$ROUNDS"); do
  for cfg in "0 1" "1 1" "1 0"; do
    set -- $cfg
    echo "== decode round $r: AWQ_W4A16_CLUSTER_SPLIT=$1 AWQ_W4A16_CLUSTER_PDL=$2"
    AWQ_W4A16_CLUSTER_SPLIT=$1 AWQ_W4A16_CLUSTER_PDL=$2 "$BUILD/awq_bench_decode" --batch 1 --pdl 1 --rounds 1 2>&1 \
      | grep -E '^\| [0-9]' | sed "s/^/split=$1 cluster_pdl=$2 /"
  done
done | tee -a "$LOG/cluster_decode.log"
rm -f "$LOG/.out"

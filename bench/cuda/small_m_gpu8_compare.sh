#!/usr/bin/env bash
# Measurements of branch gpu8 (docs/results/gpu.md: the decode kernels at M = 1..16), every run in
# one call on the GPU machine, after `scripts/gpu-check` built $BUILD:
#  tables  the table rows of every shape at the m of TABLE_MS (the dispatch of this build; with
#          BEFORE=1 also AWQ_W4A16_LONG_K=0, down_proj at m = 1 as before this branch, run before and after it)
#                                                                              -> gpu8_tables.log
#  psweep  every register-streaming configuration plain / with PDL at the m of PSWEEP_MS (default 1)
#                                                                              -> gpu8_sweep.log
#  lsweep  every register-streaming configuration (and the table row) at the m of SWEEP_MS
#                                                                              -> gpu8_sweep.log
#  tsweep  the same with the tiled GEMM's configurations too (each with 1, 2, 4 K splits) at the m
#          of TSWEEP_MS                                                         -> gpu8_sweep.log
#  ncu     Nsight Compute (the key sections) of chosen kernels: NCU_CASES, each
#          "shape:m:kernel-regex" (the first launch whose demangled name matches, in an lsweep of
#          that shape and m; the lsweep runs every configuration once)           -> gpu8_ncu.txt
#  decode  awq_bench_decode at batch 1 and 8 with PDL, ROUNDS alternations of AWQ_W4A16_LONG_K=0/1
#                                                                              -> gpu8_decode.log
#   BUILD=build/cuda LOG=out REPS=20 STEPS="tables psweep lsweep ncu" bench/cuda/small_m_gpu8_compare.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/cuda}
LOG=${LOG:-$BUILD/logs}
REPS=${REPS:-20}
STEPS=${STEPS:-"tables psweep lsweep"}
TABLE_MS=${TABLE_MS:-1,2,4,8,12,16}
SWEEP_MS=${SWEEP_MS:-"2 4 8 16"}
TSWEEP_MS=${TSWEEP_MS:-"12 16"}
PSWEEP_MS=${PSWEEP_MS:-1}  # comma list
BEFORE=${BEFORE:-0}
ROUNDS=${ROUNDS:-2}
NCU_CASES=${NCU_CASES:-}
mkdir -p "$LOG"
want() { [[ " $STEPS " == *" $1 "* ]]; }
B="$BUILD/bench_cuda_w4a16"
table() {  # label, AWQ_W4A16_LONG_K value
  AWQ_W4A16_LONG_K=$2 "$B" "$REPS" - - "$TABLE_MS" >/tmp/gpu8.out 2>&1 || tail -3 /tmp/gpu8.out
  grep -E '^(\| [a-z]|read floor)' /tmp/gpu8.out | sed "s/^/$1 /"
}
want tables && {
  [ "$BEFORE" = 1 ] && table before 0
  table after 1
  [ "$BEFORE" = 1 ] && table before-again 0
} | tee -a "$LOG/gpu8_tables.log"
want psweep && "$B" "$REPS" psweep - "$PSWEEP_MS" 2>&1 | grep '^sweep' | sed 's/^/psweep /' | tee -a "$LOG/gpu8_sweep.log"
want lsweep && for m in $SWEEP_MS; do
  "$B" "$REPS" lsweep - "$m" 2>&1 | grep -E '^(sweep|\| [a-z])' | tee -a "$LOG/gpu8_sweep.log"
done
want tsweep && for m in $TSWEEP_MS; do
  "$B" "$REPS" sweep - "$m" 2>&1 | grep -E '^(sweep|\| [a-z])' | sed 's/^sweep/tsweep/' | tee -a "$LOG/gpu8_sweep.log"
done
want ncu && for c in $NCU_CASES; do
  IFS=: read -r shape m regex <<<"$c"
  echo "=== ncu $shape m=$m kernel ~ $regex" | tee -a "$LOG/gpu8_ncu.txt"
  ncu --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats \
      --section WarpStateStats --section SchedulerStats --clock-control none \
      --kernel-name-base demangled -k "regex:$regex" --launch-count 1 -f -o /tmp/gpu8_ncu \
      "$B" 3 lsweep "$shape" "$m" >/tmp/gpu8_ncu.stdout 2>&1 || { tail -5 /tmp/gpu8_ncu.stdout | tee -a "$LOG/gpu8_ncu.txt"; continue; }
  grep -E "==(WARNING|ERROR)==" /tmp/gpu8_ncu.stdout | head -3 | tee -a "$LOG/gpu8_ncu.txt"
  ncu --import /tmp/gpu8_ncu.ncu-rep --page details 2>&1 \
    | grep -E "w4a16_mma_kernel|Duration|DRAM Throughput|Memory Throughput|L2 Hit Rate|L1/TEX Hit Rate|Achieved Occupancy|Theoretical Occupancy|Registers Per Thread|Waves Per SM|Grid Size|Block Size|Active Warps Per Scheduler|Eligible Warps Per Scheduler|Issued Warp Per Scheduler|No Eligible|Warp Cycles Per Issued Instruction|Compute \(SM\) Throughput|Block Limit|Shared Memory Configuration Size|Dynamic Shared|Mem Busy|Max Bandwidth|L2 Compression|Mem Pipes Busy" \
    | sed 's/(int, int, int, int, int, int,.*//' | tee -a "$LOG/gpu8_ncu.txt"
  ncu --import /tmp/gpu8_ncu.ncu-rep --page raw --csv \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,lts__t_bytes.sum,dram__bytes_read.sum,lts__t_sectors_srcunit_tex_op_read.sum,l1tex__t_bytes.sum" 2>/dev/null |
    python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
if len(rows) >= 3:
    names, units, vals = rows[0], rows[1], rows[-1]
    pairs, other = [], []
    for n, u, v in zip(names, units, vals):
        try: f = float(v.replace(",", ""))
        except ValueError: continue
        if n.startswith("smsp__average_warps_issue_stalled_"):
            pairs.append((f, n[len("smsp__average_warps_issue_stalled_"):-len("_per_issue_active.ratio")]))
        elif n.startswith(("lts__", "dram__", "l1tex__")):
            other.append(f"{n} {f:g} {u}")
    pairs.sort(reverse=True)
    print("  stalls (cycles per issued instruction): " + ", ".join(f"{n} {v:.2f}" for v, n in pairs[:8]))
    print("  bytes: " + "; ".join(other))
' | tee -a "$LOG/gpu8_ncu.txt"
done
want decode && for r in $(seq "$ROUNDS"); do
  for g in 0 1; do
    AWQ_W4A16_LONG_K=$g "$BUILD/awq_bench_decode" --batch 1,8 --pdl 1 --rounds 1 2>&1 \
      | grep -E '^\| [0-9]' | sed "s/^/round $r long_k=$g /"
  done
done | tee -a "$LOG/gpu8_decode.log"
rm -f /tmp/gpu8.out

#!/usr/bin/env bash
# Nsight Compute on the W4A16 kernels that w4a16_linear runs at small m, on three Llama-2-7B
# shapes (o_proj 4096 x 4096, gate+up fused 22016 x 4096, down_proj 4096 x 11008): the first
# matching kernel of `bench_cuda_w4a16 3 - <shape> <m>` (w4a16_linear's own call; ncu flushes
# the caches before each replay, so the weights come from HBM). Clocks are left as found
# (--clock-control none). Writes, under $LOG: ncu_<shape>_m<m>.ncu-rep, the details page as
# text (h100_ncu_<shape>_m<m>.txt), the SASS source counters of m = 1 as CSV, and a summary
# table of the key figures (ncu_summary.txt).
#   BUILD=build/cuda LOG=out MS="1 8 16" SET=full bench/cuda/ncu_small_m.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/cuda}
LOG=${LOG:-$BUILD/logs}
MS=${MS:-"1 8 16"}
SET=${SET:-full}
KERNELS=${KERNELS:-regex:w4a16_}
mkdir -p "$LOG"
summary="$LOG/ncu_summary.txt"
: >"$summary"
for shape in o_proj gate+up down_proj; do
  tag=${shape/+/_}
  for m in $MS; do
    rep="$LOG/ncu_${tag}_m$m"
    echo "== ncu $shape m=$m"
    ncu --set "$SET" --import-source yes --clock-control none -k "$KERNELS" --launch-count 1 -f -o "$rep" \
      "$BUILD/bench_cuda_w4a16" 3 - "$shape" "$m" >"$rep.stdout" 2>&1 || { tail -5 "$rep.stdout"; continue; }
    ncu --import "$rep.ncu-rep" --page details >"$LOG/h100_ncu_${tag}_m$m.txt" 2>&1
    if [ "$m" = 1 ]; then
      ncu --import "$rep.ncu-rep" --page source --csv --print-source sass >"$LOG/h100_ncu_${tag}_m${m}_sass.csv" 2>&1 || true
    fi
    {
      echo "### $shape m=$m"
      grep -E "^  [a-z_0-9]+(<|\()|Duration|DRAM Throughput|Memory Throughput|L2 Hit Rate|L1/TEX Hit Rate|Achieved Occupancy|Theoretical Occupancy|Registers Per Thread|Waves Per SM|Grid Size|Block Size|Active Warps Per Scheduler|Eligible Warps Per Scheduler|Issued Warp Per Scheduler|No Eligible|Warp Cycles Per Issued Instruction|Compute \(SM\) Throughput|Block Limit|Static Shared|Executed Ipc Active|Mem Busy|Max Bandwidth|One or More Eligible" \
        "$LOG/h100_ncu_${tag}_m$m.txt"
      # The stall reasons (cycles per issued instruction) of the warp state statistics.
      ncu --import "$rep.ncu-rep" --page raw --csv \
        --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" 2>/dev/null |
        python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
if len(rows) >= 3:
    names, vals = rows[0], rows[-1]
    pairs = []
    for n, v in zip(names, vals):
        if n.startswith("smsp__average_warps_issue_stalled_"):
            try: pairs.append((float(v.replace(",", "")), n[len("smsp__average_warps_issue_stalled_"):-len("_per_issue_active.ratio")]))
            except ValueError: pass
    pairs.sort(reverse=True)
    print("  stalls (cycles per issued instruction): " + ", ".join(f"{n} {v:.2f}" for v, n in pairs[:8]))
'
    } >>"$summary"
  done
done
cat "$summary"

#!/usr/bin/env python3
# Digest of an ncu SASS source export (ncu --import R.ncu-rep --page source --csv --print-source sass,
# as bench/cuda/ncu_small_m.sh writes for m = 1): the warp-stall samples per opcode and the
# instructions with the most samples, each with its top stall reasons.
#   python3 bench/cuda/ncu_sass_stalls.py h100_ncu_o_proj_m1_sass.csv [top]
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
hdr = rows[1]; data = rows[2:]
ix = {h:i for i,h in enumerate(hdr)}
tot = sum(int(r[ix["Warp Stall Sampling (All Samples)"]] or 0) for r in data)
print("total samples", tot, "instructions", len(data))
# aggregate by opcode
from collections import defaultdict
agg = defaultdict(lambda: [0,0])
stall_cols = [h for h in hdr if h.startswith("stall_") and "Not Issued" not in h]
for r in data:
    op = r[ix["Source"]].strip().split()[0]
    if op.startswith("@"): op = r[ix["Source"]].strip().split()[1]
    op = op.split(".")[0]
    agg[op][0] += int(r[ix["Warp Stall Sampling (All Samples)"]] or 0)
    agg[op][1] += int(r[ix["Instructions Executed"]] or 0)
print("by opcode (samples, warp instr executed):")
for op,(s,e) in sorted(agg.items(), key=lambda x:-x[1][0])[:15]: print(f"  {op:10s} {s:7d} {100*s/tot:5.1f}%  exec {e}")
print("top instructions:")
top = sorted(data, key=lambda r: -int(r[ix["Warp Stall Sampling (All Samples)"]] or 0))[:int(sys.argv[2]) if len(sys.argv)>2 else 25]
for r in top:
    s = int(r[ix["Warp Stall Sampling (All Samples)"]] or 0)
    st = sorted(((int(r[ix[c]] or 0), c[6:]) for c in stall_cols), reverse=True)[:3]
    print(f"  {r[0][-5:]} {100*s/tot:5.1f}% {r[ix['Source']].strip()[:60]:60s} " + " ".join(f"{n}={v}" for v,n in st if v))

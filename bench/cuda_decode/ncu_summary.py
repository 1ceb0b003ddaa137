#!/usr/bin/env python3
"""Per-kernel GPU time from an `ncu --metrics gpu__time_duration.sum --csv` log
(scripts/gpu-check profile): total, share, launches and time per launch, by kernel name."""
import collections
import csv
import sys

rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head, rows = rows[0], rows[1:]
ki, vi = head.index("Kernel Name"), head.index("Metric Value")
t = collections.defaultdict(float)
n = collections.Counter()
for r in rows:
    name = r[ki].split("(")[0][:60]
    t[name] += float(r[vi].replace(",", ""))
    n[name] += 1
tot = sum(t.values())
for k, v in sorted(t.items(), key=lambda kv: -kv[1]):
    print(f"{v / 1e3:10.1f} us  {100 * v / tot:5.1f} %  x{n[k]:4d}  {v / n[k] / 1e3:8.2f} us/launch  {k}")
print(f"total {tot / 1e3:.1f} us over {sum(n.values())} launches")

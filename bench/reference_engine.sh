#!/usr/bin/env bash
# Speed of the reference (plain, portable) engine: prefill and decode tokens/s of `awq generate`
# on one model, repeated, reporting min and median. This machine is noisy: compare figures
# measured in the same run only.
#   bash bench/reference_engine.sh MODEL_DIR [REPEATS] [THREADS]
set -euo pipefail
model=${1:?usage: bench/reference_engine.sh MODEL_DIR [REPEATS] [THREADS]}
repeats=${2:-5}
threads=${3:-$(nproc)}
awq=${AWQ:-build/release/awq}
prompt=$(head -c 2000 "$(dirname "$0")/../README.md" | tr -d '\0')
pre=(); dec=()
for i in $(seq "$repeats"); do
  line=$("$awq" generate "$model" -p "$prompt" -n 64 --temp 0 --ignore-eos -t "$threads" 2>&1 >/dev/null | grep 'tok/s' | tail -1)
  pre+=("$(sed -E 's/.*prompt: [0-9]+ tokens in [0-9.]+ ms \(([0-9.]+) tok\/s\).*/\1/' <<<"$line")")
  dec+=("$(sed -E 's/.*generated: [0-9]+ tokens in [0-9.]+ ms \(([0-9.]+) tok\/s\).*/\1/' <<<"$line")")
  echo "run $i: $line"
done
stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "max %.1f  median %.1f  min %.1f", a[NR], (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[1]}'; }
echo "prefill tok/s: $(stats "${pre[@]}")   (${repeats} runs, ${threads} threads)"
echo "decode  tok/s: $(stats "${dec[@]}")"

#!/usr/bin/env bash
# The GPU AWQ search's figures (docs/results/gpu.md, "GPU AWQ search"), on the GPU machine:
#  1. the tiny model (../shared/models/tiny-llama-gqa): `awq quantize` with --device cpu and
#     --device cuda (default calibration: 128 x 512 tokens of ../shared/data/calib.txt), wall
#     time of each, then the perplexity of both outputs on all of val.txt (CPU inference);
#  2. the random Llama-2-7B FP16 shape (`awq random-model --shape llama2-7b`, 13.5 GB, written
#     with every core; reused when already there), `awq quantize --device cuda` with the same
#     default calibration: wall time, per-layer time (one line per layer as it finishes, so a
#     run cut short by TIMEOUT_7B still leaves figures), peak GPU memory, peak host RSS.
# Usage: bench/cuda_quant/run.sh            (from the checkout, ../shared beside it)
# Environment: AWQ (the binary, default build/cuda/awq), LOG (logs, default /tmp/awq-quant-bench/logs),
#   WORK (models, default /tmp/awq-quant-bench), TIMEOUT_7B (seconds, default 330),
#   SKIP_CPU (non-empty: no tiny-model CPU run), STEPS ("tiny 7b", default both).
set -euo pipefail
cd "$(dirname "$0")/../.."
AWQ=${AWQ:-build/cuda/awq}
WORK=${WORK:-/tmp/awq-quant-bench}
LOG=${LOG:-$WORK/logs}
TIMEOUT_7B=${TIMEOUT_7B:-330}
STEPS=" ${STEPS:-tiny 7b} "
SHARED=$(cd ../shared && pwd)
TINY=$SHARED/models/tiny-llama-gqa
CALIB=$SHARED/data/calib.txt
VAL=$SHARED/data/val.txt
mkdir -p "$WORK" "$LOG"
[ -x "$AWQ" ] || { echo "cuda_quant: $AWQ not built (scripts/gpu-check builds it)"; exit 1; }
for f in "$TINY/config.json" "$CALIB" "$VAL"; do [ -e "$f" ] || { echo "cuda_quant: missing $f"; exit 1; }; done
step() { echo; echo "=== cuda_quant: $* ($(date -u +%H:%M:%S))"; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }

# The tiny model's devices (SKIP_CPU set: cuda only).
devices="cpu cuda"
[ -n "${SKIP_CPU:-}" ] && devices=cuda
if [[ "$STEPS" == *" tiny "* ]]; then
  for dev in $devices; do
    step "tiny model, awq quantize --device $dev (128 x 512 calibration tokens)"
    t0=$(now)
    "$AWQ" quantize "$TINY" -o "$WORK/tiny-awq-$dev" --force --calib "$CALIB" --device "$dev" --threads "$(nproc)" \
      >"$LOG/tiny_quantize_$dev.log" 2>&1 || { tail -20 "$LOG/tiny_quantize_$dev.log"; exit 1; }
    t1=$(now)
    grep -E "^(layer|[0-9]+ |quantized|GPU search)" "$LOG/tiny_quantize_$dev.log" || true
    echo "tiny quantize --device $dev: wall $(secs "$t0" "$t1") s"
  done
  for dev in $devices; do
    step "perplexity of the $dev-quantized tiny model, all of val.txt (CPU inference)"
    "$AWQ" perplexity "$WORK/tiny-awq-$dev" -f "$VAL" --json 2>"$LOG/tiny_ppl_$dev.err" | tee "$LOG/tiny_ppl_$dev.json"
  done
fi

if [[ "$STEPS" == *" 7b "* ]]; then
  M7=$WORK/llama2-7b-random
  if [ ! -e "$M7/config.json" ]; then
    step "random Llama-2-7B FP16 shape -> $M7 ($(nproc) threads)"
    df -h "$WORK" | tail -1
    t0=$(now)
    "$AWQ" random-model --shape llama2-7b -o "$M7" --tokenizer "$TINY" --threads "$(nproc)" 2>&1 | tail -2
    echo "random-model: $(secs "$t0" "$(now)") s"
  fi
  step "awq quantize --device cuda, random Llama-2-7B shape (128 x 512 calibration tokens), timeout ${TIMEOUT_7B} s"
  rm -rf "$WORK/llama2-7b-awq"
  t0=$(now)
  rc=0
  timeout "$TIMEOUT_7B" "$AWQ" quantize "$M7" -o "$WORK/llama2-7b-awq" --calib "$CALIB" --device cuda \
    --log-layers --threads "$(nproc)" 2>&1 | tee "$LOG/7b_quantize.log" || rc=$?
  t1=$(now)
  echo "7B quantize --device cuda: exit $rc, wall $(secs "$t0" "$t1") s"
  if [ "$rc" -ne 0 ]; then
    n=$(grep -cE "^layer [0-9]+/32:" "$LOG/7b_quantize.log" || true)
    echo "cuda_quant: the 7B run did not finish ($n of 32 layers done); per-layer times above"
  else
    du -sh "$WORK/llama2-7b-awq"
  fi
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
fi
echo "cuda_quant: done (logs in $LOG)"

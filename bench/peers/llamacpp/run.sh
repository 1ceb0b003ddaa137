#!/usr/bin/env bash
# Peer benchmark: awq.cpp vs llama.cpp (node-llama-cpp 3.21.1's prebuilt CPU binaries) on the
# same model shape, same thread count, in the same run.
#
#   bench/peers/llamacpp/run.sh MODEL_DIR
#
# MODEL_DIR: our FP16/BF16 folder (e.g. from `awq random-model --shape tinyllama-1.1b`) or an
# AWQ folder. For an FP16 folder the W4 model is $W4 (default MODEL_DIR-w4, made with
# `awq quantize --method rtn` when missing); for an AWQ folder only the W4 rows are ours.
# The GGUF files come from `awq export-gguf` (F16 and Q4_0) of the FP16 folder (of the AWQ
# one, dequantized, when that is all there is).
#
# Environment: THREADS (2) PROMPT (128) GEN (64) REPEAT (5) AWQ (build/release/awq) F16 (1; 0 skips
#   the two F16 rows, for a quicker W4-only comparison)
#   WORK (build/peers/llamacpp: node_modules, GGUF files, results) CHECK=1 also runs
#   check.mjs (greedy tokens vs reference.json) when MODEL_DIR has a reference.json.
#   LLAMA_CPU_VARIANT (unset: llama.cpp picks the best for this CPU) makes llama.cpp run its
#   build for that CPU, e.g. haswell (AVX2) or alderlake (AVX2 + AVX-VNNI): a hard-linked copy
#   of node_modules keeps only that libggml-cpu-*.so. Pair it with AWQ_CPU_ISA=avx2 / avxvnni
#   to compare the two engines on one instruction set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
[ $# -eq 1 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
model=$(cd "$1" && pwd)
THREADS=${THREADS:-2} PROMPT=${PROMPT:-128} GEN=${GEN:-64} REPEAT=${REPEAT:-5}
AWQ=${AWQ:-$root/build/release/awq}
WORK=${WORK:-$root/build/peers/llamacpp}
[ -x "$AWQ" ] || { echo "error: $AWQ not built (cmake --build build/release --target awq)" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "error: node and npm are needed (apt-get install nodejs npm)" >&2; exit 1; }

mkdir -p "$WORK/gguf" "$WORK/results"
if [ ! -d "$WORK/node_modules/node-llama-cpp" ]; then
  echo "installing node-llama-cpp@3.21.1 into $WORK (prebuilt llama.cpp binaries)" >&2
  [ -f "$WORK/package.json" ] || echo '{"name": "awq-peer-llamacpp", "private": true, "type": "module"}' > "$WORK/package.json"
  (cd "$WORK" && npm install --no-audit --no-fund node-llama-cpp@3.21.1 >&2)
fi
node_work=$WORK
if [ -n "${LLAMA_CPU_VARIANT:-}" ]; then
  bins=node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
  lib=libggml-cpu-$LLAMA_CPU_VARIANT.so
  if [ ! -f "$WORK/$bins/$lib" ]; then
    echo "error: LLAMA_CPU_VARIANT=$LLAMA_CPU_VARIANT: no $lib in $WORK/$bins; there are:" \
      $(cd "$WORK/$bins" && ls libggml-cpu-*.so | sed 's/^libggml-cpu-//; s/\.so$//') >&2
    exit 1
  fi
  node_work=$WORK/variant-$LLAMA_CPU_VARIANT
  if [ ! -d "$node_work/node_modules" ]; then
    mkdir -p "$node_work"
    cp -al "$WORK/node_modules" "$node_work/"
    cp "$WORK/package.json" "$node_work/"
    find "$node_work/$bins" -name 'libggml-cpu-*.so' ! -name "$lib" -delete
  fi
fi
# ES modules resolve packages from the script's folder: run copies that sit beside node_modules.
cp "$here/bench.mjs" "$here/check.mjs" "$here/table.mjs" "$node_work/"

if grep -q '"quant_method"' "$model/config.json"; then
  fp=""; w4=$model
else
  fp=$model; w4=${W4:-$model-w4}
  if [ ! -d "$w4" ]; then
    echo "making $w4 with awq quantize --method rtn" >&2
    "$AWQ" quantize "$fp" --method rtn -o "$w4" -t "$THREADS" >&2
  fi
fi
src=${fp:-$w4}
name=$(basename "$src")
for t in f16 q4_0; do
  g="$WORK/gguf/$name-$t.gguf"
  if [ ! -f "$g" ] || [ "$src/config.json" -nt "$g" ]; then
    "$AWQ" export-gguf "$src" -o "$g" --type "$t" --force -t "$THREADS" >&2
  fi
done

res="$WORK/results/$name-t$THREADS-p$PROMPT-g$GEN${LLAMA_CPU_VARIANT:+-llama-$LLAMA_CPU_VARIANT}${AWQ_CPU_ISA:+-awq-$AWQ_CPU_ISA}"
mkdir -p "$res"
common=(--threads "$THREADS" --prompt "$PROMPT" --gen "$GEN" --repeat "$REPEAT")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$res/load.txt" >&2
echo "llama.cpp Q4_0 ..." >&2
node "$node_work/bench.mjs" --model "$WORK/gguf/$name-q4_0.gguf" --label Q4_0 "${common[@]}" > "$res/llamacpp_q4_0.json"
echo "awq.cpp W4 ..." >&2
"$AWQ" bench "$w4" "${common[@]}" --json > "$res/ours_w4.json"
rm -f "$res/llamacpp_f16.json" "$res/ours_fp16.json"
if [ "${F16:-1}" != 0 ]; then
  echo "llama.cpp F16 ..." >&2
  node "$node_work/bench.mjs" --model "$WORK/gguf/$name-f16.gguf" --label F16 "${common[@]}" > "$res/llamacpp_f16.json"
fi
if [ -n "$fp" ] && [ "${F16:-1}" != 0 ]; then
  echo "awq.cpp FP16 ..." >&2
  "$AWQ" bench "$fp" "${common[@]}" --json > "$res/ours_fp16.json"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$res/load.txt" >&2
if [ "${CHECK:-0}" = 1 ] && [ -f "$src/reference.json" ]; then
  node "$node_work/check.mjs" --model "$WORK/gguf/$name-f16.gguf" --reference "$src/reference.json" --threads "$THREADS" --expect exact > "$res/check_f16.json"
  echo "check.mjs F16: all greedy tokens equal the reference ($res/check_f16.json)" >&2
fi
echo
echo "model: $src ($(grep -o '"hidden_size": *[0-9]*' "$src/config.json"), $(grep -o '"num_hidden_layers": *[0-9]*' "$src/config.json")); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); llama.cpp CPU build: ${LLAMA_CPU_VARIANT:-its pick}; AWQ_CPU_ISA: ${AWQ_CPU_ISA:-unset}; $(cat "$res/load.txt" | tr '\n' ';')"
node "$node_work/table.mjs" "$res/llamacpp_q4_0.json" "$res/ours_w4.json" "$res/llamacpp_f16.json" "$res/ours_fp16.json"
echo "(results: $res)"

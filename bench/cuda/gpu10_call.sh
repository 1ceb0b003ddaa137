#!/usr/bin/env bash
# Branch gpu10's device calls (o_proj at M = 64..256, issue 6): build, the W4A16 tests, and
# wsweeps with the split-K cluster reduction pushed (AWQ_W4A16_CLUSTER_PUSH=1, the default) and
# loaded (=0, the form before), alternated, in one call. Run from the checkout on the GPU
# machine with OUT set (logs go there). STEP=1: the first call (sweep); STEP=2: the final call.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export LOG=/tmp/gclog DEBS=${DEBS:-../../.gpu-debs}
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$OUT/times.log"; }
stamp build
scripts/gpu-check build > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
B=build/cuda/bench_cuda_w4a16
if [ "${STEP:-1}" = 1 ]; then
  stamp tests
  FILTER='CudaW4A16*' scripts/gpu-check tests > /dev/null 2>&1; cp "$LOG/tests.log" "$OUT/tests.log"
  grep -E '^\[  (PASSED|FAILED) |FAILED' "$OUT/tests.log" | head
  stamp sweep-after-1
  $B 20 wsweep - 64,128,256 > "$OUT/sweep_push1.log" 2>&1
  stamp sweep-before
  AWQ_W4A16_CLUSTER_PUSH=0 $B 20 wsweep - 64,128,256 > "$OUT/sweep_push0.log" 2>&1
  stamp sweep-after-2
  $B 20 wsweep o_proj 64,128,256 > "$OUT/sweep_push1b.log" 2>&1
  stamp tests-push-off
  AWQ_W4A16_CLUSTER_PUSH=0 build/cuda/tests/awq_tests --gtest_filter='CudaW4A16.EveryTiledConfiguration:CudaW4A16.SplitKIsDeterministic' > "$OUT/tests_push0.log" 2>&1
  tail -3 "$OUT/tests_push0.log"
  stamp done
fi
if [ "${STEP:-1}" = 2 ]; then
  stamp tests
  scripts/gpu-check tests > /dev/null 2>&1; cp "$LOG/tests.log" "$OUT/tests.log"
  grep -E '^\[  (PASSED|FAILED) |FAILED' "$OUT/tests.log" | head
  stamp pick-tests-push-off
  AWQ_W4A16_CLUSTER_PUSH=0 build/cuda/tests/awq_tests --gtest_filter='CudaW4A16.*Pick*:CudaW4A16.SplitKIsDeterministic:CudaW4A16.Llama2_7BShapes:CudaW4A16.EveryTiledConfiguration' > "$OUT/tests_push0.log" 2>&1
  tail -3 "$OUT/tests_push0.log"
  # Round 1 every shape, round 2 o_proj alone (the call's time).
  for r in 1 2; do
    shape=-; [ $r = 2 ] && shape=o_proj
    stamp "sweep push 1, round $r"
    $B 20 wsweep $shape 64,128,192,224,256 > "$OUT/sweep_push1_r$r.log" 2>&1
    stamp "sweep push 0, round $r"
    AWQ_W4A16_CLUSTER_PUSH=0 $B 20 wsweep $shape 64,128,192,224,256 > "$OUT/sweep_push0_r$r.log" 2>&1
  done
  stamp done
fi
if [ "${STEP:-1}" = 3 ]; then
  stamp sanitize
  FILTER='CudaW4A16*' scripts/gpu-check sanitize > "$OUT/sanitize.log" 2>&1
  for t in memcheck racecheck synccheck; do [ -f "$LOG/$t.log" ] && tail -8 "$LOG/$t.log" > "$OUT/$t.tail.log"; done
  tail -30 "$OUT/sanitize.log"
  stamp done
fi
if [ "${STEP:-1}" = 4 ]; then
  # The racecheck hazards of call 3: where (kernel, access) with the pushed reduction, and with
  # the loads of the form before (AWQ_W4A16_CLUSTER_PUSH=0).
  for p in 1 0; do
    stamp "racecheck push $p"
    AWQ_W4A16_CLUSTER_PUSH=$p compute-sanitizer --tool racecheck --racecheck-report all \
      build/cuda/tests/awq_tests --gtest_filter='CudaW4A16Race.*' > /tmp/rc$p.log 2>&1
    head -60 /tmp/rc$p.log > "$OUT/racecheck_push$p.head.log"
    { grep -E 'RACECHECK SUMMARY|PASSED|FAILED' /tmp/rc$p.log
      grep -oE '(Error|Warning): Race reported between [A-Za-z]+ access at [^ ]+ in [^ ]*' /tmp/rc$p.log | sort | uniq -c | sort -rn | head -20
      grep -E '^=+ +(Write|Read) Thread' /tmp/rc$p.log | head -5
      grep -E 'in .*kernel' /tmp/rc$p.log | sed 's/0x[0-9a-f]*//g' | sort | uniq -c | sort -rn | head -10
    } > "$OUT/racecheck_push$p.summary.log" 2>&1
    cat "$OUT/racecheck_push$p.summary.log" | head -30
  done
  stamp done
fi

#!/usr/bin/env bash
# The whole test suite, RUNS times in a row (default 3), with BUSY CPU-bound loops (default 2:
# one per core of this machine) running beside it the whole time. A correctness test must not
# depend on how fast the machine is: a test that sleeps and then asserts "not yet", or that
# times an operation, fails here. The suite is built first (not under load), so the loops
# compete with the tests only. Prints one line per run and a summary; exits non-zero if any
# run failed. Logs: bench/out/suite_under_load/run-N.log. Takes RUNS × the suite's time under
# load (about 3 × 8–15 minutes on 2 cores). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
busy=${BUSY:-2}
out=bench/out/suite_under_load
mkdir -p "$out"

cargo test --workspace --no-run "$@" >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }

pids=()
stop_loops() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop_loops EXIT
for _ in $(seq "$busy"); do
  # A shell loop that never sleeps: one core's worth of CPU.
  bash -c 'while :; do :; done' &
  pids+=("$!")
done

failed=0
for n in $(seq "$runs"); do
  start=$(date +%s)
  if cargo test --workspace "$@" >"$out/run-$n.log" 2>&1; then verdict=passed; else verdict=FAILED; failed=$((failed + 1)); fi
  secs=$(( $(date +%s) - start ))
  passed=$(grep -o '[0-9]* passed' "$out/run-$n.log" | awk '{s+=$1} END {print s+0}')
  fails=$(grep -o '[0-9]* failed' "$out/run-$n.log" | awk '{s+=$1} END {print s+0}')
  echo "run $n: $verdict in ${secs}s ($passed passed, $fails failed; load $(cut -d' ' -f1 /proc/loadavg))"
  if [ "$verdict" = FAILED ]; then grep -E '^(test .* FAILED|---- |thread .* panicked)' "$out/run-$n.log" | head -20; fi
done
echo "suite under $busy busy loops: $((runs - failed)) of $runs runs passed"
[ "$failed" -eq 0 ]

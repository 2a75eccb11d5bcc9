#!/usr/bin/env bash
# Benchmark: push-local of 100,000 local contacts and 100,000 receipts against the fake Engage
# answering every request after 50 ms, at the default rate limit of 50 requests/s. Reports the
# requests made against the minimum possible, the wall time, and whether the rate limit held;
# checks exactly-once delivery. About 35 minutes at the defaults (the receipts alone are
# 100,000 requests at 50/s). BENCH_CONTACTS, BENCH_RECEIPTS, BENCH_LATENCY_MS, BENCH_RATE and
# BENCH_LOOKUP (1 = look every contact up before creating it) and BENCH_ROWS (0 = the batch status
# lists no per-contact rows) change the run.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
cargo test --release --test integration -- --ignored --nocapture push_bench:: 2>&1 | tee bench/out/push.log

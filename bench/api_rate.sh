#!/usr/bin/env bash
# Benchmark: `full` from the API over 10,000 contacts against the fake Engage answering each
# contact GET after 100 ms; checks the client sustains >= 95 % of the rate limit and never
# exceeds it in any one-second window. About 3.5 minutes at the default 50 requests/s.
# BENCH_CONTACTS and BENCH_RATE change the size and the limit.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
cargo test --release --test integration -- --ignored --nocapture bench_api_rate:: 2>&1 | tee bench/out/api_rate.txt

#!/usr/bin/env bash
# Long fault storm: full from the API, then rounds of Engage-side changes, till activity,
# push-local and changes against a fake Engage answering 30 % of requests with a random fault
# (429 with and without Retry-After, 5xx, dropped connections before and after applying, slow
# and cut-off answers) and refusing connections every fifth round; then checks convergence and
# exactly-once delivery, and measures how far past --deadline each command ends (see
# tests/fault_storm.rs). About 10 minutes at the defaults.
# STORM_ROUNDS (default 60), STORM_DEADLINE_RUNS (default 10) and STORM_SEED change the run.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
cargo test --release --test integration -- --ignored --nocapture fault_storm_long 2>&1 \
    | tee bench/out/fault_storm.log

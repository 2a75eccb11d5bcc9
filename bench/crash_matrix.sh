#!/usr/bin/env bash
# Long crash matrix: kills the real binary (SIGKILL) at every failpoint and at many random
# moments of delta, full --from-xml, full from the API, changes, push-local, purge and the move of
# an older replica's till data into the till store, on larger data
# than the short form in `cargo test`, reruns, and checks the result equals an uninterrupted
# run (see tests/crash_matrix.rs). About 8-15 minutes at the defaults on 2 cores.
# CRASH_KILLS (random kills per scenario, default 30), CRASH_PER_FILE (contacts per export
# file, default 50000: two files fill an import transaction), CRASH_API_CONTACTS (contacts in
# the fake Engage, default 1200), CRASH_PARALLEL (trials at once, default 3) and CRASH_SEED
# (replays the random kill delays) change the run.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
CRASH_KILLS="${CRASH_KILLS:-30}" CRASH_PER_FILE="${CRASH_PER_FILE:-50000}" \
    cargo test --release --test integration -- --ignored --nocapture crash_matrix_long 2>&1 \
    | tee bench/out/crash_matrix.txt

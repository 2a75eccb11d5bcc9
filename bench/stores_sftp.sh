#!/usr/bin/env bash
# How long the stores take to follow a hub over SFTP (issue 21): a fake Engage, a hub that
# runs `full`, `changes` and `publish` into a folder a real OpenSSH sshd serves on loopback,
# and BENCH_STORES stores (default 50, half of them keys-only) running `delta --from sftp`,
# five at a time. Prints the time the stores took to import the first publication
# (BENCH_SEED contacts, default 20,000) and a round of BENCH_CHANGES changes (default 10,000:
# 40 % creates, 40 % updates, 20 % deletes); each store is compared with the hub after each.
# Needs /usr/sbin/sshd (scripts/test.sh installs it). Release build; a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
cargo test --release --test integration -- --ignored --nocapture bench_stores_converge_over_sftp \
    2>&1 | tee bench/out/stores_sftp.log

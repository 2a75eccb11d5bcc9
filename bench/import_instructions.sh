#!/usr/bin/env bash
# Import cost in CPU instructions (valgrind's callgrind), one binary against another: a
# comparison that does not depend on what else the machine is doing, unlike bench/import.sh's
# wall-clock figures. See bench/README.md ("Import cost in instructions").
#
#   BASE=/path/to/old/engage-sync bash bench/import_instructions.sh
#
# Environment: BASE (required: the binary to compare with), NEW (default: this tree's release
# build), CONTACTS (30000), UPDATES (CONTACTS/5), DELETES (CONTACTS/50), MODES ("keys full"),
# OUT (bench/out/instructions), HUB (0; 1: the new binary's replica is a hub, which keeps a
# change log: `publish` runs on it, empty, before the imports).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BASE="${BASE:?set BASE to the engage-sync binary to compare with}"
CONTACTS="${CONTACTS:-30000}"
UPDATES="${UPDATES:-$((CONTACTS / 5))}"
DELETES="${DELETES:-$((CONTACTS / 50))}"
MODES="${MODES:-keys full}"
OUT="${OUT:-$ROOT/bench/out/instructions}"

command -v valgrind >/dev/null || { echo "bench: valgrind is needed (Debian package valgrind)" >&2; exit 1; }
[[ -x "$BASE" ]] || { echo "bench: BASE $BASE is not an executable" >&2; exit 1; }
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet \
    --package engage-sync --bin engage-sync --example gen_export)
NEW="${NEW:-$TARGET_DIR/release/engage-sync}"
GEN="$TARGET_DIR/release/examples/gen_export"

rm -rf "$OUT"
mkdir -p "$OUT/data"
"$GEN" --out "$OUT/data/initial" --contacts "$CONTACTS" --per-file 10000 \
    --timestamp 20260101000000 2>/dev/null
"$GEN" --out "$OUT/data/update" --updates "$UPDATES" --deletes "$DELETES" --per-file 10000 \
    --timestamp 20260102000000 --update-of-range "0..$CONTACTS" 2>/dev/null

# Files just generated must not wait for the inbox's minimum age (older binaries ignore this).
export ENGAGE_SYNC_INBOX_MIN_AGE=0s

# Instructions of one `delta` of a folder, all threads; fails unless it read contacts (a run
# that skipped every file would look very cheap).
instructions() {
    local log="$2.$(basename "$3").log"
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" --db "$2" --json delta "$3" \
        >"$log" 2>&1
    grep -Eq '"members": [1-9]' "$log" || { echo "bench: $1 read no contact from $3:" >&2; tail -n 20 "$log" >&2; exit 1; }
    awk '/Collected :/ {print $NF}' "$log"
}

printf '%-5s %-8s %15s %15s %8s\n' mode step base new change | tee "$OUT/results.txt"
for mode in $MODES; do
    declare -A count=()
    for which in base new; do
        bin="$BASE"
        [[ "$which" == new ]] && bin="$NEW"
        work="$OUT/$which-$mode"
        mkdir -p "$work"
        cp -r "$OUT/data/initial" "$OUT/data/update" "$work/"
        "$bin" --db "$work/r.db" -q init --mode "$mode" >/dev/null
        if [[ "$which" == new && "${HUB:-0}" == 1 ]]; then
            "$bin" --db "$work/r.db" -q publish --to "$work/published" >/dev/null
        fi
        for step in initial update; do
            count[$which-$step]="$(instructions "$bin" "$work/r.db" "$work/$step")"
        done
    done
    for step in initial update; do
        b="${count[base-$step]}"
        n="${count[new-$step]}"
        printf '%-5s %-8s %15s %15s %+7.2f%%\n' "$mode" "$step" "$b" "$n" \
            "$(awk -v b="$b" -v n="$n" 'BEGIN {print (n - b) * 100 / b}')" | tee -a "$OUT/results.txt"
    done
    unset count
done

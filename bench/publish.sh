#!/usr/bin/env bash
# Benchmark of `publish` on a hub (issue 21): `publish --snapshot` of a CONTACTS-contact
# replica and `publish` of a round of UPDATES updates + DELETES deletes, contacts/s and peak
# RSS; then the time STORES stores take to import a publication of CONV_CHANGES changes
# (from a local folder, STORE_PARALLEL at a time). See bench/README.md ("publish").
#
#   bash bench/publish.sh                          # 1,000,000 contacts, full mode, 50 stores
#   CONTACTS=20000 STORES=5 bash bench/publish.sh  # smoke run
#
# Environment: CONTACTS (1000000), UPDATES (100000), DELETES (10000), MODE (full), STORES (50),
# STORE_CONTACTS (100000: contacts each store holds), CONV_CHANGES (10000), STORE_PARALLEL (2),
# OUT (bench/out), KEEP_DATA (0), CARGO_TARGET_DIR.
set -euo pipefail
export ENGAGE_SYNC_INBOX_MIN_AGE=0s

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONTACTS="${CONTACTS:-1000000}"
UPDATES="${UPDATES:-$(((CONTACTS / 10) < 100000 ? (CONTACTS / 10) : 100000))}"
DELETES="${DELETES:-$(((CONTACTS / 100) < 10000 ? (CONTACTS / 100) : 10000))}"
MODE="${MODE:-full}"
STORES="${STORES:-50}"
STORE_CONTACTS="${STORE_CONTACTS:-$(((CONTACTS) < 100000 ? CONTACTS : 100000))}"
CONV_CHANGES="${CONV_CHANGES:-$(((STORE_CONTACTS / 10) < 10000 ? (STORE_CONTACTS / 10) : 10000))}"
STORE_PARALLEL="${STORE_PARALLEL:-2}"
OUT="${OUT:-$ROOT/bench/out}"
KEEP_DATA="${KEEP_DATA:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
T_RATE=200000   # contacts/s
T_RSS_MB=100

(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet \
    --package engage-sync --bin engage-sync --example gen_export)
BIN="$TARGET_DIR/release/engage-sync"
GEN="$TARGET_DIR/release/examples/gen_export"
WORK="$OUT/publish_run"
rm -rf "$WORK"
mkdir -p "$WORK/logs"
LOGS="$WORK/logs"
RESULTS="$OUT/publish.txt"

# measure NAME CMD...: runs CMD; sets RSS_MB (peak) and WALL (s); stdout to logs/NAME.out.
measure() {
    local name="$1"; shift
    python3 -c 'import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.call(sys.argv[2:], stdout=open(sys.argv[1] + ".out", "w"), stderr=open(sys.argv[1] + ".err", "w"))
wall = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1] + ".rss", "w").write("%d %.3f\n" % (r.ru_maxrss, wall))
sys.exit(rc)' "$LOGS/$name" "$@" || { echo "bench: $name failed:" >&2; tail -n 20 "$LOGS/$name.err" >&2; exit 1; }
    RSS_MB="$(awk '{ printf "%.1f", $1 * 1024 / 1e6 }' "$LOGS/$name.rss")"
    WALL="$(awk '{ printf "%.2f", $2 }' "$LOGS/$name.rss")"
}

# json FILE KEY: a top-level number of a --json summary.
json() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

verdict() {
    awk -v rate="$1" -v rss="$2" -v min="$T_RATE" -v max="$T_RSS_MB" 'BEGIN {
        v = ""; if (rate + 0 < min + 0) v = v "rate<" min " ";
        if (rss + 0 > max + 0) v = v "RSS>" max "MB "; print (v == "" ? "ok" : v) }'
}

echo "bench: generating $CONTACTS contacts and a round of $UPDATES updates + $DELETES deletes" >&2
"$GEN" --out "$WORK/initial" --contacts "$CONTACTS" --per-file 10000 --timestamp 20260101000000 2>/dev/null
"$GEN" --out "$WORK/update" --updates "$UPDATES" --deletes "$DELETES" --per-file 10000 \
    --timestamp 20260102000000 --update-of-range "0..$CONTACTS" 2>/dev/null
HUB="$WORK/hub.db"
"$BIN" --db "$HUB" -q init --mode "$MODE"
echo "bench: loading the hub (untimed)" >&2
"$BIN" --db "$HUB" -q delta "$WORK/initial"
# The initial load counts as changes: publish them once (untimed), so the rounds below are
# what they say.
"$BIN" --db "$HUB" -q publish --to "$WORK/first"
rm -rf "$WORK/first" "$WORK/initial"
sync

printf '%-22s %10s %9s %9s %12s %8s  %s\n' step contacts engine_s wall_s contacts/s rss_mb verdict \
    | tee "$RESULTS"
row() { printf '%-22s %10s %9s %9s %12s %8s  %s\n' "$@" | tee -a "$RESULTS"; }

measure snapshot "$BIN" --db "$HUB" --json publish --snapshot --to "$WORK/snapshot"
n=$(( $(json "$LOGS/snapshot.out" new) + $(json "$LOGS/snapshot.out" deleted) ))
s="$(json "$LOGS/snapshot.out" elapsed_seconds)"
rate="$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%d", n / s }')"
row "publish --snapshot" "$n" "$(printf %.2f "$s")" "$WALL" "$rate" "$RSS_MB" "$(verdict "$rate" "$RSS_MB")"

"$BIN" --db "$HUB" -q delta "$WORK/update"
measure changes "$BIN" --db "$HUB" --json publish --to "$WORK/out"
n=$(( $(json "$LOGS/changes.out" new) + $(json "$LOGS/changes.out" updated) + $(json "$LOGS/changes.out" deleted) ))
s="$(json "$LOGS/changes.out" elapsed_seconds)"
rate="$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%d", n / s }')"
row "publish (changes)" "$n" "$(printf %.2f "$s")" "$WALL" "$rate" "$RSS_MB" "$(verdict "$rate" "$RSS_MB")"

# Stores: STORE_CONTACTS contacts each (keys mode, from a template), then one publication of
# CONV_CHANGES updates, imported by every store from a local folder.
if (( STORES > 0 )); then
    echo "bench: $STORES stores of $STORE_CONTACTS contacts (keys mode)" >&2
    S="$WORK/stores"; mkdir -p "$S"
    "$GEN" --out "$S/initial" --contacts "$STORE_CONTACTS" --per-file 10000 --timestamp 20260101000000 2>/dev/null
    "$GEN" --out "$S/update" --updates "$CONV_CHANGES" --deletes 0 --per-file 10000 \
        --timestamp 20260102000000 --update-of-range "0..$STORE_CONTACTS" 2>/dev/null
    "$BIN" --db "$S/hub.db" -q init --mode "$MODE"
    "$BIN" --db "$S/hub.db" -q delta "$S/initial"
    "$BIN" --db "$S/hub.db" -q publish --snapshot --to "$S/snapshot"
    "$BIN" --db "$S/template.db" -q full --mode keys --from-xml "$S"/snapshot/*.xml
    "$BIN" --db "$S/hub.db" -q publish --to "$S/first"
    "$BIN" --db "$S/hub.db" -q delta "$S/update"
    "$BIN" --db "$S/hub.db" -q publish --to "$S/out"
    for i in $(seq 1 "$STORES"); do
        cp "$(readlink -f "$S/template.db")" "$S/store$i.db"
        cp "$(readlink -f "$S/template.db").till" "$S/store$i.db.till" 2>/dev/null || true
    done
    sync
    t0="$(date +%s.%N)"
    seq 1 "$STORES" | xargs -P "$STORE_PARALLEL" -I{} "$BIN" --db "$S/store{}.db" -q delta "$S/out"
    t1="$(date +%s.%N)"
    conv="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
    echo "$STORES stores imported a publication of $CONV_CHANGES changes in $conv s" \
         "($STORE_PARALLEL at a time, local folder, $STORE_CONTACTS contacts each)" | tee -a "$RESULTS"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git -C "$ROOT" rev-parse --short HEAD)" \
    | tee -a "$RESULTS"
[[ "$KEEP_DATA" == 1 ]] || rm -rf "$WORK"/*.db* "$WORK/snapshot" "$WORK/out" "$WORK/update" "$WORK/stores"

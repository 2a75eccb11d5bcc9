#!/usr/bin/env bash
# Import benchmark for engage-sync: throughput, peak memory and lookup latency.
# See bench/README.md. Needs the Rust toolchain, bash, coreutils, awk and python3 (standard
# library only). /usr/bin/time is used for peak RSS when present, else a python3 fallback.
#
#   bash bench/import.sh                  # full size: 1,000,000 contacts, modes keys and full
#   CONTACTS=20000 bash bench/import.sh   # quick smoke run
#
# Environment: CONTACTS (1000000), UPDATES (100000, at most CONTACTS/10 by default),
# DELETES (10000, at most CONTACTS/100 by default), MODES ("keys full"),
# PER_FILE (10000), LOOKUPS (200), SINGLE_FILE (1: also compare one big file with one small),
# MEM_MODE (full, else the last of MODES), OUT (bench/out), KEEP_DATA (0), CARGO_TARGET_DIR,
# FULL (1: also `full --from-xml` of the initial export into a new replica, per mode),
# PY_MODES ("keys": modes in which bench/python_baseline.py imports the same files; "" = none).
set -euo pipefail
# The export files are generated just before each import: take them at once.
export ENGAGE_SYNC_INBOX_MIN_AGE=0s

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONTACTS="${CONTACTS:-1000000}"
[[ "$CONTACTS" =~ ^[0-9]+$ ]] || { echo "bench: CONTACTS is not a number: $CONTACTS" >&2; exit 1; }
# Default second round: 100,000 updates + 10,000 deletes, or a tenth and a hundredth of
# CONTACTS when that is smaller (so CONTACTS=20000 alone is a valid quick run).
UPDATES="${UPDATES:-$(((CONTACTS / 10) < 100000 ? (CONTACTS / 10) : 100000))}"
DELETES="${DELETES:-$(((CONTACTS / 100) < 10000 ? (CONTACTS / 100) : 10000))}"
MODES="${MODES:-keys full}"
FULL="${FULL:-1}"
PY_MODES="${PY_MODES-keys}"
PER_FILE="${PER_FILE:-10000}"
LOOKUPS="${LOOKUPS:-200}"
SINGLE_FILE="${SINGLE_FILE:-1}"
OUT="${OUT:-$ROOT/bench/out}"
KEEP_DATA="${KEEP_DATA:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SMALL=10000
TS_INITIAL=20260101000000
TS_UPDATE=20260102000000

# Targets (bench/README.md).
T_INITIAL=50000   # contacts/s, initial import
T_UPDATE=25000    # contacts/s, update round
T_FULL=250000     # contacts/s, full --from-xml (issue 7)
T_UPDATE_NEXT=100000 # contacts/s, update round (issue 7)
T_RSS_MB=100      # peak RSS of any import
T_LOOKUP_MS=5     # whole-process median of `lookup`

die() {
    echo "bench: $*" >&2
    exit 1
}

for n in "$UPDATES" "$DELETES" "$PER_FILE" "$LOOKUPS"; do
    [[ "$n" =~ ^[0-9]+$ ]] || die "not a number: $n"
done
((CONTACTS > 0)) || die "CONTACTS must be at least 1"
((UPDATES + DELETES <= CONTACTS)) || die "UPDATES + DELETES must not exceed CONTACTS"
((SMALL <= CONTACTS)) || SMALL="$CONTACTS"
for mode in $MODES; do
    [[ "$mode" == keys || "$mode" == full ]] || die "unknown mode in MODES: $mode"
done
if [[ -z "${MEM_MODE:-}" ]]; then
    MEM_MODE=full
    [[ " $MODES " == *" full "* ]] || MEM_MODE="${MODES##* }"
fi
command -v python3 >/dev/null || die "python3 is needed (standard library only)"
command -v cargo >/dev/null || die "cargo is needed"
TIME_BIN=""
if [[ -x /usr/bin/time ]] && /usr/bin/time -f '%M' -o /dev/null true 2>/dev/null; then
    TIME_BIN=/usr/bin/time
fi

WORK="$OUT/run"
DATA="$WORK/data"
LOGS="$WORK/logs"
ROWS="$WORK/rows.tsv"
LOOKUP_ROWS="$WORK/lookups.tsv"
RESULTS="$OUT/results.txt"
rm -rf "${WORK:?}"
mkdir -p "$DATA" "$LOGS"
: >"$ROWS"
: >"$LOOKUP_ROWS"

echo "== building (release)" >&2
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet \
    --package engage-sync --bin engage-sync --example gen_export)
BIN="$TARGET_DIR/release/engage-sync"
GEN="$TARGET_DIR/release/examples/gen_export"
[[ -x "$BIN" && -x "$GEN" ]] || die "build products not found under $TARGET_DIR/release"
REV="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(cd "$ROOT" && git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    REV="$REV+uncommitted"
fi

# measure NAME CMD...: runs CMD with stdout to $LOGS/NAME.out and stderr to $LOGS/NAME.err;
# sets WALL (seconds), CPU_S (user + system seconds) and RSS_MB (peak resident set size of CMD,
# in MB of 10^6 bytes).
measure() {
    local name="$1" t0 t1 rc=0
    shift
    t0="$(date +%s%N)"
    if [[ -n "$TIME_BIN" ]]; then
        "$TIME_BIN" -f '%M %U %S' -o "$LOGS/$name.rss" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || rc=$?
    else
        python3 -c '
import resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    f.write("%d %.2f %.2f %.3f\n" % (r.ru_maxrss, r.ru_utime, r.ru_stime, wall))
sys.exit(rc)' "$LOGS/$name.rss" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || rc=$?
    fi
    t1="$(date +%s%N)"
    if ((rc != 0)); then
        echo "bench: step $name failed (exit $rc): $*" >&2
        tail -n 20 "$LOGS/$name.err" >&2 || true
        exit 1
    fi
    WALL="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')"
    if [[ -z "$TIME_BIN" ]]; then # the child's own wall time, without python's start-up
        WALL="$(tail -n 1 "$LOGS/$name.rss" | awk '{ printf "%.2f", $4 }')"
    fi
    RSS_MB="$(tail -n 1 "$LOGS/$name.rss" | awk '{ printf "%.1f", $1 * 1024 / 1e6 }')"
    CPU_S="$(tail -n 1 "$LOGS/$name.rss" | awk '{ printf "%.2f", $2 + $3 }')"
}

# row STEP MODE CONTACTS ENGINE_S WALL_S CPU_S RATE_JSON RATE_WALL RSS_MB VERDICT
row() {
    local IFS=$'\t'
    echo "$*" >>"$ROWS"
}

# verdict RATE_OR_EMPTY MIN_RATE RSS_MB: "ok" when every target given is met, else what is not.
verdict() {
    awk -v rate="$1" -v min="$2" -v rss="$3" -v maxrss="$T_RSS_MB" 'BEGIN {
        v = ""
        if (min != "" && rate + 0 < min + 0) v = v "rate<" min " "
        if (rss != "" && rss + 0 > maxrss + 0) v = v "RSS>" maxrss "MB "
        sub(/ $/, "", v); print (v == "" ? "ok" : "MISS " v)
    }'
}

# import_step NAME MODE DB DIR EXPECTED MIN_RATE LABEL: runs `delta DIR --json` and records a row.
import_step() {
    local name="$1" mode="$2" db="$3" dir="$4" expected="$5" min="$6" label="$7" fields
    echo "== $label ($mode)" >&2
    measure "$name" "$BIN" --db "$db" delta "$dir" --json
    fields="$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
if d["files_failed"] or d["members"] != int(sys.argv[2]):
    sys.exit("unexpected summary: failed=%s members=%s (expected %s)"
             % (d["files_failed"], d["members"], sys.argv[2]))
print(d["members"], "%.2f" % d["elapsed_seconds"], d["inserted"], d["updated"], d["deleted"], d["stale"])
' "$LOGS/$name.out" "$expected")" || die "step $name: see $LOGS/$name.out"
    local members engine inserted updated deleted stale rate_json rate_wall
    read -r members engine inserted updated deleted stale <<<"$fields"
    rate_json="$(awk -v m="$members" -v s="$engine" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')"
    rate_wall="$(awk -v m="$members" -v s="$WALL" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')"
    echo "   $members contacts ($inserted new, $updated updated, $deleted deleted, $stale stale)" \
        "in ${engine} s (wall ${WALL} s, cpu ${CPU_S} s): $rate_json contacts/s, peak RSS ${RSS_MB} MB" >&2
    row "$label" "$mode" "$members" "$engine" "$WALL" "$CPU_S" "$rate_json" "$rate_wall" "$RSS_MB" \
        "$(verdict "$rate_json" "$min" "$RSS_MB")"
}

# full_step NAME MODE DB DIR EXPECTED: `full --from-xml DIR` into a new replica; records a row.
full_step() {
    local name="$1" mode="$2" db="$3" dir="$4" expected="$5" fields
    echo "== full --from-xml ($mode)" >&2
    measure "$name" "$BIN" --db "$db" full --mode "$mode" --from-xml "$dir" --json
    fields="$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
if d["members"] != int(sys.argv[2]) or d["contacts"] != int(sys.argv[2]):
    sys.exit("unexpected summary: members=%s contacts=%s" % (d["members"], d["contacts"]))
print(d["members"], "%.2f" % d["elapsed_seconds"])
' "$LOGS/$name.out" "$expected")" || die "step $name: see $LOGS/$name.out"
    local members engine rate_json rate_wall
    read -r members engine <<<"$fields"
    rate_json="$(awk -v m="$members" -v s="$engine" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')"
    rate_wall="$(awk -v m="$members" -v s="$WALL" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')"
    echo "   $members contacts in ${engine} s (wall ${WALL} s, cpu ${CPU_S} s): $rate_json contacts/s," \
        "peak RSS ${RSS_MB} MB" >&2
    row "full --from-xml (new replica, swap)" "$mode" "$members" "$engine" "$WALL" "$CPU_S" \
        "$rate_json" "$rate_wall" "$RSS_MB" "$(verdict "$rate_json" "$T_FULL" "$RSS_MB")"
}

# py_step NAME MODE DB DIR LABEL: bench/python_baseline.py on DIR; records a row.
py_step() {
    local name="$1" mode="$2" db="$3" dir="$4" label="$5" members engine rate
    echo "== $label ($mode)" >&2
    measure "$name" python3 "$ROOT/bench/python_baseline.py" --db "$db" --mode "$mode" "$dir"
    read -r members engine rate <<<"$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["members"], "%.2f" % d["elapsed_seconds"], d["contacts_per_second"])
' "$LOGS/$name.out")" || die "step $name: see $LOGS/$name.out"
    echo "   $members contacts in ${engine} s: $rate contacts/s, peak RSS ${RSS_MB} MB" >&2
    row "$label" "$mode" "$members" "$engine" "$WALL" "$CPU_S" "$rate" \
        "$(awk -v m="$members" -v s="$WALL" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')" \
        "$RSS_MB" "baseline"
}

# lookup_step MODE DB: whole-process latency of `lookup --mobile` for random existing contacts.
lookup_step() {
    local mode="$1" db="$2" stats median p95 found
    echo "== lookup --mobile x $LOOKUPS ($mode)" >&2
    stats="$(python3 - "$BIN" "$db" "$CONTACTS" "$LOOKUPS" <<'PY'
import random, statistics, subprocess, sys, time

binary, db, contacts, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(20260101)

def phone(n):
    # gen_export writes +467{n:08}; look it up in national form, as a till would.
    d = "%08d" % (n % 10**8)
    return "07%s-%s %s %s" % (d[0], d[1:4], d[4:6], d[6:8])

def once(n):
    t0 = time.perf_counter()
    rc = subprocess.call([binary, "--db", db, "lookup", "--mobile", phone(n)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, rc

for _ in range(5):  # warm the page cache
    once(rng.randrange(contacts))
times, found = [], 0
for _ in range(runs):
    dt, rc = once(rng.randrange(contacts))
    if rc not in (0, 1):
        sys.exit("lookup failed with exit code %d" % rc)
    found += rc == 0
    times.append(dt * 1000)
times.sort()
p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else 0
print("%.2f %.2f %d" % (statistics.median(times) if times else 0, p95, found))
PY
)" || die "lookup benchmark failed"
    read -r median p95 found <<<"$stats"
    echo "   median ${median} ms, p95 ${p95} ms, found $found/$LOOKUPS" >&2
    local v
    v="$(awk -v m="$median" -v t="$T_LOOKUP_MS" -v f="$found" -v n="$LOOKUPS" 'BEGIN {
        v = ""
        if (m + 0 > t + 0) v = v "median>" t "ms "
        if (f + 0 < n + 0) v = v "not-found:" (n - f) " "
        sub(/ $/, "", v); print (v == "" ? "ok" : "MISS " v)
    }')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$LOOKUPS" "$median" "$p95" "$found" "$v" \
        >>"$LOOKUP_ROWS"
}

# size_mb FILE...: total size in MB of the files that exist.
size_mb() {
    local total=0 f
    for f in "$@"; do
        if [[ -f "$f" ]]; then
            total=$((total + $(stat -c %s "$f")))
        fi
    done
    awk -v t="$total" 'BEGIN { printf "%.0f", t / 1e6 }'
}

# ---------------------------------------------------------------- data
echo "== generating export files" >&2
gen() {
    "$GEN" "$@" 2>>"$LOGS/gen.err" || die "gen_export failed: $(tail -n 5 "$LOGS/gen.err")"
}
GEN_T0="$(date +%s%N)"
gen --out "$DATA/initial" --contacts "$CONTACTS" --per-file "$PER_FILE" --timestamp "$TS_INITIAL"
if ((UPDATES + DELETES > 0)); then
    gen --out "$DATA/update" --updates "$UPDATES" --deletes "$DELETES" --per-file "$PER_FILE" \
        --update-of-range "0..$CONTACTS" --timestamp "$TS_UPDATE"
fi
if [[ "$SINGLE_FILE" == 1 ]]; then
    gen --out "$DATA/one-big" --contacts "$CONTACTS" --per-file "$CONTACTS" --timestamp "$TS_INITIAL"
    gen --out "$DATA/one-small" --contacts "$SMALL" --per-file "$SMALL" --timestamp "$TS_INITIAL"
fi
GEN_S="$(awk -v a="$GEN_T0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')"
# Write the generated XML (about 1.1 GB) to disk now, so that its write-back does not overlap
# the first import (measured: it cost that import a quarter of its throughput).
sync
cat "$LOGS/gen.err" >&2
INITIAL_FILES="$(find "$DATA/initial" -name '*.xml' | wc -l)"
INITIAL_MB="$(du -sb "$DATA/initial" | awk '{ printf "%.0f", $1 / 1e6 }')"

# ---------------------------------------------------------------- runs
declare -A DB_MB RSS_INITIAL
for mode in $MODES; do
    db="$WORK/$mode.db"
    echo "== init --mode $mode" >&2
    measure "init-$mode" "$BIN" --db "$db" init --mode "$mode"
    import_step "initial-$mode" "$mode" "$db" "$DATA/initial" "$CONTACTS" "$T_INITIAL" \
        "initial import ($INITIAL_FILES files)"
    RSS_INITIAL[$mode]="$RSS_MB"
    lookup_step "$mode" "$db"
    if ((UPDATES + DELETES > 0)); then
        import_step "update-$mode" "$mode" "$db" "$DATA/update" "$((UPDATES + DELETES))" \
            "$T_UPDATE" "update round (${UPDATES} upd + ${DELETES} del)"
    fi
    DB_MB[$mode]="$(size_mb "$db" "$db-wal")"
    if [[ "$FULL" == 1 ]]; then
        full_step "full-$mode" "$mode" "$WORK/full-$mode.db" "$DATA/initial" "$CONTACTS"
        rm -rf "$WORK/full-$mode.db" "$WORK/full-$mode.db.d" "$WORK/full-$mode.db.lock"
    fi
done

for mode in $PY_MODES; do
    db="$WORK/py-$mode.db"
    measure "py-init-$mode" "$BIN" --db "$db" init --mode "$mode"
    py_step "py-initial-$mode" "$mode" "$db" "$DATA/initial" "initial import, Python baseline"
    if ((UPDATES + DELETES > 0)); then
        py_step "py-update-$mode" "$mode" "$db" "$DATA/update" "update round, Python baseline"
    fi
    rm -f "$db" "$db-wal" "$db-shm" "$db.lock"
done

if [[ "$SINGLE_FILE" == 1 ]]; then
    for size in big small; do
        db="$WORK/one-$size.db"
        measure "init-one-$size" "$BIN" --db "$db" init --mode "$MEM_MODE"
        if [[ "$size" == big ]]; then n="$CONTACTS"; else n="$SMALL"; fi
        import_step "one-$size" "$MEM_MODE" "$db" "$DATA/one-$size" "$n" "" \
            "one file of $n contacts"
        if [[ "$size" == big ]]; then RSS_BIG="$RSS_MB"; else RSS_SMALL="$RSS_MB"; fi
        rm -f "$db" "$db-wal" "$db-shm" "$db.lock"
    done
fi

# ---------------------------------------------------------------- report
report() {
    local load cpu rust
    load="$(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null || echo '?')"
    cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo '?')"
    rust="$(rustc --version 2>/dev/null || echo '?')"
    echo "engage-sync import benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), git $REV (at build)"
    echo "host: $(nproc) CPU(s) ${cpu}, load now ${load}; ${rust}"
    echo "data: ${CONTACTS} contacts in ${INITIAL_FILES} files of ${PER_FILE} (${INITIAL_MB} MB)," \
        "then ${UPDATES} updates + ${DELETES} deletes; generated in ${GEN_S} s"
    echo "rates: engine = members / elapsed_seconds of the --json summary; wall = whole process;"
    echo "cpu_s = user + system time; MB = 10^6 bytes"
    echo
    printf '%-38s %-5s %9s %9s %8s %7s %10s %10s %7s  %s\n' \
        step mode contacts engine_s wall_s cpu_s engine_c/s wall_c/s rss_MB verdict
    local step mode n eng wall cpu rj rw rss v
    while IFS=$'\t' read -r step mode n eng wall cpu rj rw rss v; do
        printf '%-38s %-5s %9s %9s %8s %7s %10s %10s %7s  %s\n' \
            "$step" "$mode" "$n" "$eng" "$wall" "$cpu" "$rj" "$rw" "$rss" "$v"
    done <"$ROWS"
    echo
    printf '%-38s %-5s %9s %9s %8s %7s  %s\n' \
        "lookup --mobile (whole process)" mode runs median_ms p95_ms found verdict
    local runs median p95 found
    while IFS=$'\t' read -r mode runs median p95 found v; do
        printf '%-38s %-5s %9s %9s %8s %7s  %s\n' "" "$mode" "$runs" "$median" "$p95" "$found" "$v"
    done <"$LOOKUP_ROWS"
    echo
    if [[ -n "${RSS_BIG:-}" ]]; then
        local multi="${RSS_INITIAL[$MEM_MODE]:-}"
        echo "peak RSS, $MEM_MODE mode: one file of ${CONTACTS} contacts ${RSS_BIG} MB; one file of ${SMALL}" \
            "contacts (into an empty replica) ${RSS_SMALL} MB"
        if [[ -n "$multi" ]]; then
            echo "  vs the same ${CONTACTS} contacts in ${INITIAL_FILES} files: ${multi} MB -> $(awk \
                -v b="$RSS_BIG" -v m="$multi" 'BEGIN { d = b - m
                printf "%+.1f MB, %s", d, (d <= m * 0.1 + 2 ? "ok: independent of file size" : "MISS: grows with file size") }')"
        fi
        echo "  (a small import into a small replica stays lower: SQLite's page cache, bounded by" \
            "PRAGMA cache_size, fills as the database grows, whatever the file size)"
    fi
    for mode in $MODES; do
        echo "replica size after both rounds, $mode mode: ${DB_MB[$mode]} MB"
    done
    for mode in $PY_MODES; do
        awk -F '\t' -v m="$mode" '
            $2 == m && $1 ~ /^initial import \(/ { ours_i = $7 }
            $2 == m && $1 ~ /^update round \(/ { ours_u = $7 }
            $2 == m && $1 ~ /^full --from-xml/ { ours_f = $7 }
            $2 == m && $1 == "initial import, Python baseline" { py_i = $7 }
            $2 == m && $1 == "update round, Python baseline" { py_u = $7 }
            END {
                if (py_i > 0) printf "vs Python baseline, %s mode: delta initial %.1fx, full --from-xml %.1fx", m, ours_i / py_i, ours_f / py_i
                if (py_u > 0) printf ", update round %.1fx", ours_u / py_u
                if (py_i > 0) printf " (target >= 10x)\n"
            }' "$ROWS"
    done
    echo "issue 7 targets: full --from-xml >= ${T_FULL}/s (its verdict above), update round" \
        ">= ${T_UPDATE_NEXT}/s, >= 10x the Python baseline on the same files"
    echo "targets: initial >= ${T_INITIAL}/s, update round >= ${T_UPDATE}/s, peak RSS <= ${T_RSS_MB} MB" \
        "and the same for one ${CONTACTS}-contact file as for ${PER_FILE}-contact files," \
        "lookup median <= ${T_LOOKUP_MS} ms"
    [[ -n "$TIME_BIN" ]] || echo "note: no /usr/bin/time; peak RSS from python3's getrusage, which" \
        "never reads below python's own RSS (about 10-15 MB), as Linux keeps the high-water mark across exec"
}
report | tee "$RESULTS"
echo "(written to $RESULTS; logs in $LOGS)" >&2

if [[ "$KEEP_DATA" != 1 ]]; then
    rm -rf "${DATA:?}"
    for mode in $MODES; do
        rm -f "$WORK/$mode.db" "$WORK/$mode.db-wal" "$WORK/$mode.db-shm" "$WORK/$mode.db.lock"
    done
fi

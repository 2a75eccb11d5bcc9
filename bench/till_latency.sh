#!/usr/bin/env bash
# Till latency benchmark for engage-sync: how long a till write and a POS lookup take, as whole
# processes, while the replica's heavy jobs run. See bench/README.md ("Till latency").
#
# On a CONTACTS-contact replica (mode MODE), a till writes every INTERVAL seconds (`receipt add -`
# with a fresh receipt; every 5th write a `contact add`) and a POS looks a contact up every
# INTERVAL seconds (`lookup --email`, contacts that exist, and the till's own new ones), each on a
# fixed schedule of start times, for the whole run of each job:
#   bulk_delta  first `delta` of FIRST_DELTA contacts into an empty replica (a bulk load)
#   delta       `delta` of UPDATES updates + DELETES deletes onto the replica
#   full        `full --from-xml` of CONTACTS contacts onto the replica
#   changes     `changes` against the fake Engage (CHANGES_SEED contacts, CHANGES_LATENCY_MS each)
#   purge       `purge --older-than 1s`, after delivered outbox rows exist
#   push        `push-local` of a PUSH_RECEIPTS-receipt backlog against the fake Engage
# Targets per till write: longest <= 100 ms, p99 <= 50 ms, no failure; lookups p99 <= 20 ms.
# Needs bash, coreutils, python3 (standard library only) and, unless the binaries are given,
# the Rust toolchain.
#
#   bash bench/till_latency.sh                      # issue size: 1,000,000 contacts (long)
#   CONTACTS=20000 FIRST_DELTA=10000 UPDATES=2000 DELETES=200 PUSH_RECEIPTS=300 \
#       bash bench/till_latency.sh                  # smoke run, a minute or two
#   JOBS="delta full" bash bench/till_latency.sh    # some of the jobs, in the order given
#
# Environment: CONTACTS (1000000), FIRST_DELTA (500000, at most CONTACTS/2 by default),
# UPDATES (100000, at most CONTACTS/10), DELETES (10000, at most CONTACTS/100), PUSH_RECEIPTS
# (10000, at most CONTACTS/100), CHANGES_SEED (2000, at most CONTACTS/100, at least 100),
# CHANGES_LATENCY_MS (200), PURGE_RECEIPTS (200), INTERVAL (0.2), JOBS ("bulk_delta delta full
# changes purge push"), MODE (full), PER_FILE (10000), KNOWN (200 addresses to look up),
# IDLE_SECONDS (10: a reference row with no job; 0 = none), RATE_LIMIT (200) and
# MAX_CONCURRENCY (8) for the [engage] config, CALL_TIMEOUT (60 s per till or POS call),
# OUT (bench/out), KEEP_DATA (0), CARGO_TARGET_DIR. ENGAGE_SYNC_BIN, GEN_EXPORT_BIN and
# FAKE_ENGAGE_BIN name prebuilt binaries; when all three are set nothing is built.
set -euo pipefail
# The export files are generated just before each import: take them at once.
export ENGAGE_SYNC_INBOX_MIN_AGE=0s

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/bench/till_latency.py"

die() {
    echo "bench: $*" >&2
    exit 1
}
isnum() { [[ "$1" =~ ^[0-9]+$ ]]; }
min() { echo $(($1 < $2 ? $1 : $2)); }
max() { echo $(($1 > $2 ? $1 : $2)); }

CONTACTS="${CONTACTS:-1000000}"
isnum "$CONTACTS" || die "CONTACTS is not a number: $CONTACTS"
FIRST_DELTA="${FIRST_DELTA:-$(min 500000 $((CONTACTS / 2)))}"
UPDATES="${UPDATES:-$(min 100000 $((CONTACTS / 10)))}"
DELETES="${DELETES:-$(min 10000 $((CONTACTS / 100)))}"
PUSH_RECEIPTS="${PUSH_RECEIPTS:-$(min 10000 $((CONTACTS / 100)))}"
CHANGES_SEED="${CHANGES_SEED:-$(min 2000 "$(max 100 $((CONTACTS / 100)))")}"
CHANGES_LATENCY_MS="${CHANGES_LATENCY_MS:-200}"
PURGE_RECEIPTS="${PURGE_RECEIPTS:-200}"
INTERVAL="${INTERVAL:-0.2}"
JOBS="${JOBS:-bulk_delta delta full changes purge push}"
MODE="${MODE:-full}"
PER_FILE="${PER_FILE:-10000}"
KNOWN="${KNOWN:-200}"
IDLE_SECONDS="${IDLE_SECONDS:-10}"
RATE_LIMIT="${RATE_LIMIT:-200}"
MAX_CONCURRENCY="${MAX_CONCURRENCY:-8}"
CALL_TIMEOUT="${CALL_TIMEOUT:-60}"
OUT="${OUT:-$ROOT/bench/out}"
KEEP_DATA="${KEEP_DATA:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
API_KEY=bench-key
KNOWN_LOCAL=20 # contacts registered at the till before the bulk load, for the POS to find
TS_INITIAL=20260101000000
TS_UPDATE=20260102000000
TS_FULL=20260103000000

# Targets (bench/README.md, "Till latency").
T_TILL_MAX_MS=100
T_TILL_P99_MS=50
T_LOOKUP_P99_MS=20

for v in FIRST_DELTA UPDATES DELETES PUSH_RECEIPTS CHANGES_SEED CHANGES_LATENCY_MS \
    PURGE_RECEIPTS PER_FILE KNOWN IDLE_SECONDS MAX_CONCURRENCY; do
    isnum "${!v}" || die "$v is not a number: ${!v}"
done
[[ "$INTERVAL" =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v i="$INTERVAL" 'BEGIN { exit !(i > 0) }' ||
    die "INTERVAL must be a positive number of seconds: $INTERVAL"
[[ "$RATE_LIMIT" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "RATE_LIMIT is not a number: $RATE_LIMIT"
[[ "$CALL_TIMEOUT" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "CALL_TIMEOUT is not a number: $CALL_TIMEOUT"
[[ "$MODE" == keys || "$MODE" == full ]] || die "MODE must be keys or full: $MODE"
((CONTACTS > 0)) || die "CONTACTS must be at least 1"
((PER_FILE > 0)) || die "PER_FILE must be at least 1"
((KNOWN > 0)) || die "KNOWN must be at least 1"
for job in $JOBS; do
    case "$job" in
    bulk_delta | delta | full | changes | purge | push) ;;
    *) die "unknown job in JOBS: $job (bulk_delta delta full changes purge push)" ;;
    esac
done
[[ -n "${JOBS// /}" ]] || die "JOBS is empty"
wants() { [[ " $JOBS " == *" $1 "* ]]; }
MAIN_JOBS=0 # does any job run on the CONTACTS-contact replica?
API_JOBS=0  # does any job need the fake Engage?
for job in $JOBS; do
    [[ "$job" == bulk_delta ]] || MAIN_JOBS=1
    [[ "$job" == changes || "$job" == purge || "$job" == push ]] && API_JOBS=1
done
if wants bulk_delta; then ((FIRST_DELTA > 0)) || die "FIRST_DELTA must be at least 1"; fi
if wants delta; then
    ((UPDATES + DELETES > 0)) || die "UPDATES + DELETES must be at least 1"
    ((UPDATES + DELETES <= CONTACTS)) || die "UPDATES + DELETES must not exceed CONTACTS"
fi
if wants push; then ((PUSH_RECEIPTS > 0)) || die "PUSH_RECEIPTS must be at least 1"; fi
((API_JOBS == 0 || CHANGES_SEED > 0)) || die "CHANGES_SEED must be at least 1"
command -v python3 >/dev/null || die "python3 is needed (standard library only)"

# ---------------------------------------------------------------- binaries
BIN="${ENGAGE_SYNC_BIN:-}"
GEN="${GEN_EXPORT_BIN:-}"
FAKE="${FAKE_ENGAGE_BIN:-}"
BUILT=""
if [[ -z "$BIN" || -z "$GEN" ]]; then
    command -v cargo >/dev/null || die "cargo is needed (or set ENGAGE_SYNC_BIN and GEN_EXPORT_BIN)"
    echo "== cargo build --release --bin engage-sync --example gen_export -p engage-sync" >&2
    (cd "$ROOT" && cargo build --release --bin engage-sync --example gen_export -p engage-sync) ||
        die "build failed"
    BIN="${BIN:-$TARGET_DIR/release/engage-sync}"
    GEN="${GEN:-$TARGET_DIR/release/examples/gen_export}"
    BUILT="built"
fi
if [[ -z "$FAKE" && "$API_JOBS" == 1 ]]; then
    command -v cargo >/dev/null || die "cargo is needed (or set FAKE_ENGAGE_BIN)"
    echo "== cargo build --release -p fake-engage" >&2
    (cd "$ROOT" && cargo build --release -p fake-engage) || die "build of fake-engage failed"
    FAKE="$TARGET_DIR/release/fake-engage"
    BUILT="built"
fi
[[ -x "$BIN" ]] || die "not an executable: $BIN"
[[ -x "$GEN" ]] || die "not an executable: $GEN"
[[ "$API_JOBS" == 0 || -x "$FAKE" ]] || die "not an executable: $FAKE"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    REV="$REV+uncommitted changes"
fi

# ---------------------------------------------------------------- work folders
WORK="$OUT/till_latency_run"
DATA="$WORK/data"
DBS="$WORK/db"
LOGS="$WORK/logs"
CSV_DIR="$OUT/till_latency"
RESULTS="$OUT/till_latency.txt"
SUMMARY="$WORK/summary.jsonl"
NOTES="$WORK/notes"
CONF="$WORK/engage-sync.toml"
rm -rf "${WORK:?}" "${CSV_DIR:?}"
mkdir -p "$DATA" "$DBS" "$LOGS" "$CSV_DIR" "$NOTES"
: >"$SUMMARY"
cat >"$CONF" <<EOF
# Written by bench/till_latency.sh. Every engage-sync command of the run reads it (--config).
[engage]
rate_limit = $RATE_LIMIT
max_concurrency = $MAX_CONCURRENCY

[local]
store_external_id = "0600"
key_prefix = "L0600-"
EOF

FAKE_PID=""
CHILD_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ -n "$CHILD_PID" ]]; then
        kill "$CHILD_PID" 2>/dev/null || true
        wait "$CHILD_PID" 2>/dev/null || true
    fi
    if [[ -n "$FAKE_PID" ]]; then
        kill "$FAKE_PID" 2>/dev/null || true
        wait "$FAKE_PID" 2>/dev/null || true
    fi
    if [[ "$KEEP_DATA" != 1 ]]; then
        rm -rf "${DATA:?}" "${DBS:?}"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# run NAME CMD...: runs CMD in the background (so a signal reaches the cleanup at once) with
# stdout and stderr in $LOGS/NAME.out and .err; sets RC. Stdin comes from $LOGS/NAME.in if present.
run() {
    local name="$1" input=/dev/null
    shift
    [[ -f "$LOGS/$name.in" ]] && input="$LOGS/$name.in"
    "$@" <"$input" >"$LOGS/$name.out" 2>"$LOGS/$name.err" &
    CHILD_PID=$!
    RC=0
    wait "$CHILD_PID" || RC=$?
    CHILD_PID=""
}

# must NAME OK_RCS CMD...: run, and stop the benchmark unless the exit code is one of OK_RCS.
must() {
    local name="$1" ok="$2"
    shift 2
    run "$name" "$@"
    if [[ ",$ok," != *",$RC,"* ]]; then
        echo "bench: step $name failed (exit $RC): $*" >&2
        tail -n 20 "$LOGS/$name.err" >&2 || true
        exit 1
    fi
}

es() { "$BIN" --config "$CONF" "$@"; }

# note JOB TEXT: a line under the job in the report's "jobs:" list.
note() {
    local job="$1"
    shift
    echo "$*" >>"$NOTES/$job.txt"
}

# measure NAME LABEL DB KNOWN_FILE OK_RCS [--env K=V]... -- CMD...: runs the job CMD while the
# till and the POS work on DB; appends its summary to $SUMMARY and its samples to CSV_DIR.
measure() {
    local name="$1" label="$2" db="$3" known="$4" ok="$5" extra=()
    shift 5
    while [[ "$1" != -- ]]; do
        extra+=("$1")
        shift
    done
    shift
    echo "== $name: $label (till and POS every ${INTERVAL} s)" >&2
    python3 "$PY" job --name "$name" --label "$label" --bin "$BIN" --db "$db" --config "$CONF" \
        --known "$known" --interval "$INTERVAL" --seed-members "$CHANGES_SEED" \
        --call-timeout "$CALL_TIMEOUT" --csv "$CSV_DIR/$name.csv" --summary "$SUMMARY" \
        --log "$LOGS/job-$name" --ok-rc "$ok" "${extra[@]}" -- "$@" &
    CHILD_PID=$!
    local rc=0
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    ((rc == 0)) || die "the driver of job $name failed (exit $rc)"
    # The job's own summary (its first lines on stdout), and what it logged about holding
    # the till off, warnings and errors.
    local line
    while IFS= read -r line; do
        [[ -n "$line" ]] && note "$name" "$line"
    done < <(head -n 3 "$LOGS/job-$name.out" | cut -c 1-200)
    while IFS= read -r line; do
        note "$name" "$line"
    done < <(grep -m 3 -E 'swapped in|WARN|ERROR|error' "$LOGS/job-$name.err" | cut -c 1-200 || true)
}

# ---------------------------------------------------------------- fake Engage
FAKE_URL=""
FAKE_SINCE=""
start_fake() {
    [[ -n "$FAKE_PID" ]] && return 0
    echo "== fake Engage: $CHANGES_SEED contacts, ${CHANGES_LATENCY_MS} ms per request" >&2
    FAKE_SINCE="$(date -u -d '-2 hours' '+%Y-%m-%dT%H:%M:%SZ')"
    "$FAKE" --port 0 --api-key "$API_KEY" --seed "$CHANGES_SEED" \
        --latency-ms "$CHANGES_LATENCY_MS" >"$LOGS/fake.out" 2>"$LOGS/fake.err" &
    FAKE_PID=$!
    local i
    for i in $(seq 1 100); do
        FAKE_URL="$(head -n 1 "$LOGS/fake.out" 2>/dev/null || true)"
        [[ -n "$FAKE_URL" ]] && break
        kill -0 "$FAKE_PID" 2>/dev/null || die "fake-engage did not start: $(cat "$LOGS/fake.err")"
        sleep 0.1
    done
    [[ "$FAKE_URL" == http://127.0.0.1:* ]] || die "fake-engage printed no loopback URL: $FAKE_URL"
}
api() { env ENGAGE_BASE_URL="$FAKE_URL" ENGAGE_API_KEY="$API_KEY" "$@"; }

# ---------------------------------------------------------------- data
echo "== generating export files" >&2
gen() {
    "$GEN" "$@" 2>>"$LOGS/gen.err" || die "gen_export failed: $(tail -n 5 "$LOGS/gen.err")"
}
if wants bulk_delta; then
    gen --out "$DATA/first" --contacts "$FIRST_DELTA" --per-file "$PER_FILE" --timestamp "$TS_INITIAL"
fi
if ((MAIN_JOBS)); then
    gen --out "$DATA/initial" --contacts "$CONTACTS" --per-file "$PER_FILE" --timestamp "$TS_INITIAL"
fi
if wants delta; then
    gen --out "$DATA/update" --updates "$UPDATES" --deletes "$DELETES" --per-file "$PER_FILE" \
        --update-of-range "0..$CONTACTS" --timestamp "$TS_UPDATE"
fi
if wants full; then # a later full export of the same contacts
    gen --out "$DATA/full" --contacts "$CONTACTS" --per-file "$PER_FILE" --timestamp "$TS_FULL"
fi
sync # write the XML out now, not during the first job
cat "$LOGS/gen.err" >&2

# ---------------------------------------------------------------- the replica
MAIN_DB="$DBS/main.db"
MAIN_READY=0
main_replica() {
    ((MAIN_READY)) && return 0
    echo "== building the $CONTACTS-contact $MODE-mode replica (not measured)" >&2
    must main-init 0 es --db "$MAIN_DB" init --mode "$MODE"
    must main-load 0 es --db "$MAIN_DB" delta "$DATA/initial"
    sync
    # Addresses of contacts the update round leaves alone: every job must find them.
    python3 "$PY" known --db "$MAIN_DB" --count "$KNOWN" --exclude-from "$DATA/update" \
        >"$WORK/known-main.txt" || die "cannot pick contacts to look up in $MAIN_DB"
    MAIN_READY=1
    if ((IDLE_SECONDS > 0)); then
        measure idle "no job: sleep $IDLE_SECONDS s (reference, not judged)" "$MAIN_DB" \
            "$WORK/known-main.txt" 0 --reference -- sleep "$IDLE_SECONDS"
    fi
}

# receipts FILE N PREFIX: N receipts (JSON Lines) for customers of the fake Engage.
receipts() {
    python3 "$PY" receipts --count "$2" --prefix "$3" --seed-members "$CHANGES_SEED" >"$1"
}

# ---------------------------------------------------------------- jobs
for job in $JOBS; do
    case "$job" in
    bulk_delta)
        db="$DBS/bulk.db"
        must bulk-init 0 es --db "$db" init --mode "$MODE"
        # The POS needs contacts that exist during the load: till-registered ones (local
        # contacts do not stop the first import from being a bulk load).
        python3 -c '
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"email": "known-local-%d@example.com" % i, "firstName": "Known"}))
' "$KNOWN_LOCAL" >"$LOGS/bulk-known.in"
        must bulk-known 0 es --db "$db" contact add --from -
        seq 0 $((KNOWN_LOCAL - 1)) | sed 's/.*/known-local-&@example.com/' >"$WORK/known-bulk.txt"
        measure bulk_delta "first delta of $FIRST_DELTA contacts into an empty replica" "$db" \
            "$WORK/known-bulk.txt" 0 -- "$BIN" --db "$db" --config "$CONF" delta "$DATA/first"
        [[ "$KEEP_DATA" == 1 ]] || rm -rf "$db" "$db"-* "$db".*
        ;;
    delta)
        main_replica
        measure delta "delta of $UPDATES updates + $DELETES deletes onto the replica" "$MAIN_DB" \
            "$WORK/known-main.txt" 0 -- "$BIN" --db "$MAIN_DB" --config "$CONF" delta "$DATA/update"
        ;;
    full)
        main_replica
        measure full "full --from-xml of $CONTACTS contacts onto the replica" "$MAIN_DB" \
            "$WORK/known-main.txt" 0 -- "$BIN" --db "$MAIN_DB" --config "$CONF" full \
            --from-xml "$DATA/full"
        ;;
    changes)
        main_replica
        start_fake
        measure changes "changes from a fake Engage of $CHANGES_SEED contacts, ${CHANGES_LATENCY_MS} ms/request" \
            "$MAIN_DB" "$WORK/known-main.txt" 0 --env "ENGAGE_BASE_URL=$FAKE_URL" \
            --env "ENGAGE_API_KEY=$API_KEY" -- "$BIN" --db "$MAIN_DB" --config "$CONF" changes \
            --since "$FAKE_SINCE"
        ;;
    purge)
        main_replica
        start_fake
        # Delivered outbox rows for purge to delete: these receipts and whatever the till
        # queued in the jobs before, pushed (not measured), then older than 1 s.
        receipts "$LOGS/purge-receipts.in" "$PURGE_RECEIPTS" purge
        must purge-receipts 0 es --db "$MAIN_DB" receipt add -
        echo "== push-local before purge (not measured)" >&2
        must purge-push 0,75 api "$BIN" --db "$MAIN_DB" --config "$CONF" push-local
        note purge "before it (not measured): $PURGE_RECEIPTS receipts added, then push-local" \
            "(exit $RC): $(head -n 1 "$LOGS/purge-push.out" | cut -c 1-160)"
        sleep 1.5
        measure purge "purge --older-than 1s" "$MAIN_DB" "$WORK/known-main.txt" 0 -- \
            "$BIN" --db "$MAIN_DB" --config "$CONF" purge --older-than 1s
        ;;
    push)
        main_replica
        start_fake
        receipts "$LOGS/push-receipts.in" "$PUSH_RECEIPTS" backlog
        t0="$(date +%s%N)"
        must push-receipts 0 es --db "$MAIN_DB" receipt add -
        note push "before it (not measured): $PUSH_RECEIPTS receipts buffered by one receipt add in" \
            "$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') s"
        # Exit 75 is expected: receipts the till adds during the push wait for the next run.
        measure push "push-local of a $PUSH_RECEIPTS-receipt backlog" "$MAIN_DB" \
            "$WORK/known-main.txt" 0,75 --env "ENGAGE_BASE_URL=$FAKE_URL" \
            --env "ENGAGE_API_KEY=$API_KEY" -- "$BIN" --db "$MAIN_DB" --config "$CONF" push-local
        ;;
    esac
done

# ---------------------------------------------------------------- report
report() {
    local load cpu
    load="$(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null || echo '?')"
    cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo '?')"
    echo "engage-sync till latency benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), git $REV"
    echo "host: $(nproc) CPU(s) ${cpu}, load now ${load}"
    if [[ -n "$BUILT" ]]; then
        echo "binaries: built by this run (release) into $TARGET_DIR"
    else
        echo "binaries: given: $BIN (not built by this run; may differ from git $REV)"
    fi
    echo "replica: $MODE mode, $CONTACTS contacts (first delta $FIRST_DELTA; update round $UPDATES" \
        "updates + $DELETES deletes; push backlog $PUSH_RECEIPTS receipts); fake Engage:" \
        "$CHANGES_SEED contacts, $CHANGES_LATENCY_MS ms per request; [engage] rate_limit" \
        "$RATE_LIMIT, max_concurrency $MAX_CONCURRENCY"
    echo "till: one write every $INTERVAL s (receipt add -, every 5th a contact add); POS: one" \
        "lookup --email every $INTERVAL s; each one whole process, timed from python3"
    echo
    python3 "$PY" report --summary "$SUMMARY" --notes-dir "$NOTES" --till-max-ms "$T_TILL_MAX_MS" \
        --till-p99-ms "$T_TILL_P99_MS" --lookup-p99-ms "$T_LOOKUP_P99_MS"
}
report | tee "$RESULTS"
echo "(written to $RESULTS; samples in $CSV_DIR/*.csv; logs in $LOGS)" >&2

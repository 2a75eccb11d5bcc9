#!/usr/bin/env bash
# Mutation testing of the modules that hold engage-sync's guarantees (issue 22).
#
#   bash bench/mutants.sh GROUP...     # one or more groups, e.g. `bench/mutants.sh purge locks`
#   bash bench/mutants.sh all          # every group, one after another (many hours on 2 cores)
#   bash bench/mutants.sh --list GROUP # only list the group's mutants (seconds)
#   bash bench/mutants.sh survivors    # what the groups left alive, against the long tests
#
# Each group names the source files it mutates (`-f`) and the tests that guard them (test
# name filters), so a mutant is judged by the few tests that can catch it, not the whole
# suite. Results go to bench/out/mutants/GROUP/ (cargo-mutants' own `mutants.out/`: caught.txt,
# missed.txt, timeout.txt, unviable.txt, outcomes.json, log/); the last line per group is
# "GROUP: N mutants, caught C, missed M, timeout T, unviable U".
# Extra arguments for cargo-mutants go in MUTANTS_ARGS (e.g. MUTANTS_ARGS=--iterate to test
# only what was not caught last time, or MUTANTS_ARGS='-F purge_expired' to filter by name).
# MUTANTS_TESTS replaces the group's test filters, e.g. a quick first pass over `push` with
# MUTANTS_TESTS='push:: push_report', then MUTANTS_ARGS=--iterate with the group's own tests
# (the crash matrix and fault storm too) over what the first pass missed.
# Not run by CI: a mutant costs about a minute of build on 2 cores.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

# group -> files to mutate
declare -A FILES=(
    [purge]="src/replica/purge.rs src/commands/purge.rs src/purge/mod.rs src/purge/files.rs"
    [outbox]="src/outbox/store.rs src/outbox/receipt.rs src/outbox/till.rs src/outbox/local.rs src/outbox/mod.rs src/outbox/input.rs src/outbox/fields.rs"
    [push]="src/outbox/push/mod.rs src/outbox/push/plan.rs src/outbox/push/contacts/mod.rs src/outbox/push/contacts/batch.rs src/outbox/push/contacts/lookup.rs src/outbox/push/contacts/outcome.rs src/outbox/push/contacts/poll.rs src/outbox/push/contacts/rows.rs src/outbox/push/contacts/send.rs src/outbox/push/contacts/verify.rs src/outbox/push/receipts.rs src/engage/fan_out.rs"
    [mask]="src/mask.rs src/printable.rs"
    [engage]="src/engage/limiter.rs src/engage/retry.rs"
    [locks]="src/lock.rs"
    [modes]="src/fsutil.rs src/sqlite_file/mod.rs src/db_owner.rs"
    [replica]="src/replica/apply.rs src/replica/merge.rs src/replica/bulk.rs src/replica/generation.rs src/replica/rekey.rs src/replica/ledger.rs"
    [keys]="src/replica/row.rs src/api_sync/mod.rs src/api_sync/changes.rs"
)
# group -> the tests that guard those files: names of test modules (the integration tests'
# files, `tests/FILE.rs` is module FILE, and the library's own modules), given to the test
# harness as filters, so each mutant runs those tests of the unit-test and integration
# binaries and no other.
declare -A TESTS=(
    [purge]="purge purge_scope purge_files"
    [outbox]="outbox:: till_never_waits sample_receipt keys_mode json_output ambiguous_input hostile_input lookup push:: push_report purge"
    [push]="push:: push_report fault_storm crash_matrix keys_mode json_output fan_out"
    [mask]="mask printable output_privacy quiet_output hostile_input"
    [engage]="engage:: engage_client bench_api_rate"
    [locks]="lock concurrency push:: readers_under_write"
    [modes]="fsutil sqlite_file db_owner files_and_databases purge_scope keys:: hostile_input"
    [replica]="replica:: delta:: bulk_load keys_mode ambiguous_input malformed fuzz_regressions no_stray_replica lookup hub_stores publish files_and_databases crash_matrix"
    [keys]="row:: api_sync keys_mode keys:: delta::"
)
# group -> regex of mutants left out, with the reason (cargo-mutants -E, matched against
# the names --list shows). Only output that is pure description is left out.
# None so far: every function in these groups is part of a guarantee.
declare -A EXCLUDE=()
ORDER=(purge outbox mask engage locks modes keys replica push)

# `survivors`: not a module but the mutants every group left alive (the equivalent ones of
# bench/mutants-equivalent.md and the few described as left in bench/README.md), named one
# per line in bench/mutants-survivors.txt as `--list` prints them (the lines are those of the
# commit that wrote the file: update it when the code moves). They are run with the long
# tests that no group's quick pass runs (the crash matrix and the fault storm, whose kills
# and faults reach every module), to check that those too see no difference. Not in `all`.
SURVIVORS=$root/bench/mutants-survivors.txt
FILES[survivors]=$(printf '%s ' "${FILES[@]}")
TESTS[survivors]="crash_matrix fault_storm"

usage() {
    echo "usage: $0 [--list] GROUP...|all   (groups: ${ORDER[*]})" >&2
    exit 2
}

list_only=0
if [[ ${1:-} == --list ]]; then
    list_only=1
    shift
fi
[[ $# -ge 1 ]] || usage
groups=("$@")
[[ ${groups[0]} == all ]] && groups=("${ORDER[@]}")
for g in "${groups[@]}"; do
    [[ -n ${FILES[$g]:-} ]] || { echo "unknown group: $g" >&2; usage; }
done

command -v cargo-mutants >/dev/null || {
    echo "cargo-mutants is not installed: cargo install --locked cargo-mutants" >&2
    exit 69
}

# One build folder for every group and run, apart from the worktree's target/: the
# dependencies are built once, and a mutant rebuilds only engage-sync. Never point it at the
# worktree's own target/: cargo-mutants builds mutated copies of the tree there, and a later
# `cargo test` in the worktree can take the last mutant's binaries as up to date.
export CARGO_TARGET_DIR=${MUTANTS_TARGET_DIR:-$root/bench/out/mutants/target}

# Lines of a cargo-mutants result file (0 when it is missing or empty).
count() { if [[ -f $1 ]]; then grep -c . "$1" || true; else echo 0; fi; }

for g in "${groups[@]}"; do
    args=()
    for f in ${FILES[$g]}; do args+=(-f "$f"); done
    [[ -n ${EXCLUDE[$g]:-} ]] && args+=(-E "${EXCLUDE[$g]}")
    if [[ $g == survivors ]]; then
        # Each name as a whole-name regex: the regex's own characters escaped.
        while IFS= read -r name; do
            [[ -z $name || $name == '#'* ]] && continue
            args+=(-F "^$(printf '%s' "$name" | sed 's/[][\\.+*?(){}|^$]/\\&/g')\$")
        done <"$SURVIVORS"
    fi
    if ((list_only)); then
        cargo mutants --list "${args[@]}"
        continue
    fi
    out=$root/bench/out/mutants/$g
    mkdir -p "$out"
    # The library's unit tests and the one integration-test binary (tests/tests.rs) are built
    # for each mutant (-C goes to every cargo call); the filters after `-- --` pick the tests.
    args+=(-C --lib -C --test -C integration)
    # shellcheck disable=SC2086 # MUTANTS_ARGS and the filters are word lists on purpose
    cargo mutants "${args[@]}" --output "$out" ${MUTANTS_ARGS:-} -- -- ${MUTANTS_TESTS:-${TESTS[$g]}} ||
        true # cargo-mutants exits 2 when a mutant survives
    r=$out/mutants.out
    c=$(count "$r/caught.txt") m=$(count "$r/missed.txt")
    t=$(count "$r/timeout.txt") u=$(count "$r/unviable.txt")
    echo "$g: $((c + m + t + u)) mutants, caught $c, missed $m, timeout $t, unviable $u" |
        tee -a "$root/bench/out/mutants/summary.txt"
    [[ -s $r/missed.txt ]] && { echo "missed:"; sed 's/^/  /' "$r/missed.txt"; }
    if [[ $g == survivors ]]; then
        # cargo-mutants 27.1 lets struct-field deletions past -F and -E: they run too, but
        # only the listed names are survivors.
        echo "listed survivors the long tests caught (no longer equivalent: look again):"
        cat "$r/caught.txt" "$r/timeout.txt" 2>/dev/null | grep -xFf "$SURVIVORS" | sed 's/^/  /' ||
            echo "  none"
    fi
done

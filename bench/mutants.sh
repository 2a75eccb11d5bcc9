#!/usr/bin/env bash
# Mutation testing of the modules that hold engage-sync's guarantees (issue 22).
#
#   bash bench/mutants.sh GROUP...     # one or more groups, e.g. `bench/mutants.sh purge locks`
#   bash bench/mutants.sh all          # every group, one after another (many hours on 2 cores)
#   bash bench/mutants.sh --list GROUP # only list the group's mutants (seconds)
#
# Each group names the source files it mutates (`-f`) and the test binaries that guard them
# (`-- --test …`), so a mutant is judged by the few tests that can catch it, not the whole
# suite. Results go to bench/out/mutants/GROUP/ (cargo-mutants' own `mutants.out/`: caught.txt,
# missed.txt, timeout.txt, unviable.txt, outcomes.json, log/); the last line per group is
# "GROUP: N mutants, caught C, missed M, timeout T, unviable U".
# Extra arguments for cargo-mutants go in MUTANTS_ARGS (e.g. MUTANTS_ARGS=--iterate to test
# only what was not caught last time, or MUTANTS_ARGS='-F purge_expired' to filter by name).
# Not run by CI: a mutant costs about a minute of build on 2 cores.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

# group -> files to mutate
declare -A FILES=(
    [purge]="src/replica/purge.rs src/commands/purge.rs src/purge_files.rs"
    [outbox]="src/outbox/store.rs src/outbox/receipt.rs src/outbox/till.rs src/outbox/local.rs src/outbox/mod.rs src/outbox/input.rs src/outbox/fields.rs"
    [push]="src/outbox/push/mod.rs src/outbox/push/plan.rs src/outbox/push/contacts.rs src/outbox/push/receipts.rs src/outbox/push/parallel.rs"
    [mask]="src/mask.rs src/printable.rs"
    [engage]="src/engage/limiter.rs src/engage/retry.rs"
    [locks]="src/lock.rs"
    [modes]="src/fsutil.rs src/sqlite_file.rs src/db_owner.rs"
    [replica]="src/replica/apply.rs src/replica/merge.rs src/replica/bulk.rs src/replica/generation.rs src/replica/rekey.rs src/replica/ledger.rs"
    [keys]="src/replica/row.rs src/api_sync/mod.rs"
)
# group -> test binaries that guard those files (cargo test arguments)
declare -A TESTS=(
    [purge]="--lib --test purge --test purge_scope"
    [outbox]="--lib --test outbox --test till_never_waits --test sample_receipt --test keys_mode --test push"
    [push]="--test push --test fault_storm --test crash_matrix --test keys_mode"
    [mask]="--lib --test output_privacy --test quiet_output --test hostile_input"
    [engage]="--lib --test engage_client --test bench_api_rate"
    [locks]="--lib --test concurrency --test push --test readers_under_write"
    [modes]="--lib --test files_and_databases --test purge_scope --test keys"
    [replica]="--lib --test delta --test crash_matrix --test bulk_load --test keys_mode"
    [keys]="--lib --test keys_mode --test api_sync --test keys --test delta"
)
# group -> regex of mutants left out, with the reason (cargo-mutants -E, matched against
# the names --list shows). Only output that is pure description is left out.
# None so far: every function in these groups is part of a guarantee.
declare -A EXCLUDE=()
ORDER=(purge outbox mask engage locks modes keys replica push)

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
# dependencies are built once, and a mutant rebuilds only engage-sync.
export CARGO_TARGET_DIR=${MUTANTS_TARGET_DIR:-$root/bench/out/mutants/target}

# Lines of a cargo-mutants result file (0 when it is missing or empty).
count() { if [[ -f $1 ]]; then grep -c . "$1" || true; else echo 0; fi; }

for g in "${groups[@]}"; do
    args=()
    for f in ${FILES[$g]}; do args+=(-f "$f"); done
    [[ -n ${EXCLUDE[$g]:-} ]] && args+=(-E "${EXCLUDE[$g]}")
    if ((list_only)); then
        cargo mutants --list "${args[@]}"
        continue
    fi
    out=$root/bench/out/mutants/$g
    mkdir -p "$out"
    # The test targets go to every cargo call (-C), so each mutant builds only those test
    # binaries and the engage-sync binary they run, not the whole suite.
    for t in ${TESTS[$g]}; do args+=(-C "$t"); done
    # shellcheck disable=SC2086 # MUTANTS_ARGS is a word list on purpose
    cargo mutants "${args[@]}" --output "$out" ${MUTANTS_ARGS:-} ||
        true # cargo-mutants exits 2 when a mutant survives
    r=$out/mutants.out
    c=$(count "$r/caught.txt") m=$(count "$r/missed.txt")
    t=$(count "$r/timeout.txt") u=$(count "$r/unviable.txt")
    echo "$g: $((c + m + t + u)) mutants, caught $c, missed $m, timeout $t, unviable $u" |
        tee -a "$root/bench/out/mutants/summary.txt"
    [[ -s $r/missed.txt ]] && { echo "missed:"; sed 's/^/  /' "$r/missed.txt"; }
done

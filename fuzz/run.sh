#!/usr/bin/env bash
# Runs one fuzz target for a while, as one process, from its seeds and its growing corpus.
# Usage: fuzz/run.sh TARGET SECONDS [extra libFuzzer flags]
set -uo pipefail
cd "$(dirname "$0")/.."
target=$1
seconds=$2
shift 2
mkdir -p "fuzz/corpus/$target" "fuzz/logs"
seeds=()
[ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
# Stable Rust: cargo-fuzz needs nightly flags, which RUSTC_BOOTSTRAP=1 allows.
RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none --debug-assertions "$target" \
    "fuzz/corpus/$target" "${seeds[@]}" -- \
    -jobs=1 -workers=1 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$@" > "fuzz/logs/$target.log" 2>&1
status=$?
# With -jobs, libFuzzer writes the worker's output to fuzz-0.log.
[ -f fuzz-0.log ] && mv fuzz-0.log "fuzz/logs/$target-0.log"
exit $status

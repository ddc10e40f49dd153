#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time under AddressSanitizer + UBSan.
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]     TARGET: gguf | model | tokenizer | options
# Builds build-fuzz/ with clang (-Dfuzz=true, oneDNN off: one OpenMP runtime), starts from the
# committed seeds in fuzz/corpus/TARGET plus what earlier runs found (build-fuzz/corpus/TARGET),
# and ends with one line: "fuzz TARGET: N executions in S s, coverage C, 0 crashes" (S: the time
# it took; libFuzzer's -runs=N can end it before SECONDS). A crash or
# sanitizer report leaves its input in build-fuzz/crashes/ and makes the exit status non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: scripts/fuzz.sh gguf|model|tokenizer|options SECONDS [libFuzzer options...]" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
target=$1 seconds=$2
shift 2
case $target in gguf | model | tokenizer | options) ;; *) usage ;; esac
[[ $seconds =~ ^[1-9][0-9]*$ ]] || usage

dir=build-fuzz
# One configure / build at a time: targets run side by side share build-fuzz/.
exec 9>"$dir.lock"
flock 9
if [[ ! -f $dir/build.ninja ]]; then
  CC=clang CXX=clang++ meson setup "$dir" -Dfuzz=true -Donednn=disabled -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C "$dir" "fuzz/fuzz_$target" >/dev/null
flock -u 9

work=$dir/corpus/$target
mkdir -p "$work" "$dir/crashes"
log=$dir/fuzz-$target.log
start=$SECONDS
set +e
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  "$dir/fuzz/fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
  -artifact_prefix="$dir/crashes/$target-" "$@" "$work" "fuzz/corpus/$target" >"$log" 2>&1
rc=$?
set -e
elapsed=$((SECONDS - start))
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
if [[ $rc -ne 0 ]]; then
  echo "fuzz $target: FAILED (exit $rc) after ${execs:-?} executions; log: $log, inputs: $dir/crashes/" >&2
  grep -E "ERROR|runtime error|SUMMARY|Test unit written" "$log" | head -20 >&2
  exit 1
fi
echo "fuzz $target: ${execs:-0} executions in $elapsed s, coverage ${cov:-?}, 0 crashes"

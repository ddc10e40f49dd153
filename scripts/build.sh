#!/usr/bin/env bash
# Configure (once) and build one build folder. Usage: scripts/build.sh [DIR [meson options...]]
# DIR defaults to build (release). The sanitizer build is: scripts/build.sh build-asan
# -Db_sanitize=address,undefined -Dbuildtype=debugoptimized
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
# ALTUP_BUILD_PROGRESS=1 shows ninja's progress (one line rewritten on a terminal).
if [[ ! -f $dir/build.ninja ]]; then
  meson setup "$dir" "$@" >/dev/null
fi
if [[ ${ALTUP_BUILD_PROGRESS:-0} == 1 ]]; then
  ninja -C "$dir"
else
  ninja -C "$dir" >/dev/null
fi

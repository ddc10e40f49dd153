#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, and generate text with the shipped
# demo model (demo/kjv-altup-k2.gguf, an AltUp K=2 model trained on the King James Bible).
# Extra arguments go to `altup run` (e.g. -p "In the beginning" -n 64 --seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "demo: building (release; a few minutes the first time on 2 cores)"
ALTUP_BUILD_PROGRESS=1 scripts/build.sh build
echo "demo: generating with the shipped model (build/cli/altup run -n 96 $*)"
exec build/cli/altup run -n 96 "$@"

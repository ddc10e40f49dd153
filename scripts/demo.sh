#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, and generate text with the shipped
# demo model (demo/kjv-altup-k2.gguf, an AltUp K=2 model trained on the King James Bible).
# Extra arguments go to `altup run` (e.g. -p "In the beginning" -n 64 --seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "demo: building (release)"
scripts/build.sh build
exec build/cli/altup run -n 96 "$@"

#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, and run the main job on the shipped
# file. Until the shipped demo model lands (issue 4) the main job is `altup info` on the
# small Llama-layout GGUF that the tests also use.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "demo: building (release)"
scripts/build.sh build
exec build/cli/altup info tests/fixtures/llama_like.gguf

#!/usr/bin/env bash
# The peer for bench/compare: llama.cpp, through PyPI's llama-cpp-python, in .venv-compare.
# PyPI ships it as source only, so pip compiles llama.cpp here (about 10-20 minutes on
# 2 cores). GGML_NATIVE=ON builds it for this CPU (AVX-512 here), as llama.cpp's own
# build does by default: the peer gets the same instruction set as altup.cpp.
# Kept out of the test and demo path; needed only to run bench/compare.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
LLAMA_CPP_PYTHON_VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)
if ! .venv-compare/bin/python -c "import llama_cpp" 2>/dev/null; then
  echo "bootstrap-compare: building llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} (compiles llama.cpp)"
  [[ -x .venv-compare/bin/python ]] || "$PY" -m venv .venv-compare
  .venv-compare/bin/python -m pip install -q --disable-pip-version-check -r converters/requirements.txt
  .venv-compare/bin/python -m pip install -q --disable-pip-version-check --no-deps -e converters
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON}" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    .venv-compare/bin/python -m pip install --disable-pip-version-check \
    "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}"
fi
echo "ready: .venv-compare/bin/python ($(.venv-compare/bin/python -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__)'))"

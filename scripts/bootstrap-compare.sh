#!/usr/bin/env bash
# The peer for bench/compare: llama.cpp, through PyPI's llama-cpp-python, in .venv-compare.
# PyPI ships it as source only, so pip compiles llama.cpp here (about 10-20 minutes on
# 2 cores). GGML_NATIVE=ON builds it for this CPU (AVX-512 here), as llama.cpp's own
# build does by default: the peer gets the same instruction set as altup.cpp.
# Kept out of the test and demo path; needed only to run bench/compare.
#
# On a CPU with AMX (Sapphire Rapids and later), GGML_NATIVE also compiles ggml's AMX int8
# kernels, and in this llama.cpp they crash: the tile configuration is built on the stack,
# the compiler drops part of it, and the first `ldtilecfg` raises a general-protection fault
# (seen here on Q8_0, in ggml_backend_amx_mul_mat; llama.cpp PR #26954 describes the bug and
# is not merged). There the peer is built with AMX turned off (explicit -mno-amx-* flags win
# over -march=native in GCC), so it runs its AVX-512 VNNI kernels instead of dying.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
LLAMA_CPP_PYTHON_VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)
AMX_OFF=""
if grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
  AMX_OFF="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
fi
peer_ok() {  # importable, and (on an AMX CPU, unless CMAKE_ARGS chose otherwise) built without ggml's AMX kernels
  local info
  info=$(.venv-compare/bin/python -c "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())" 2>/dev/null) || return 1
  [[ -z $AMX_OFF || -n ${CMAKE_ARGS:-} || $info != *"AMX_INT8 = 1"* ]]
}
if ! peer_ok; then
  echo "bootstrap-compare: building llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} (compiles llama.cpp)"
  [[ -x .venv-compare/bin/python ]] || "$PY" -m venv .venv-compare
  .venv-compare/bin/python -m pip install -q --disable-pip-version-check -r converters/requirements.txt
  .venv-compare/bin/python -m pip install -q --disable-pip-version-check --no-deps -e converters
  DEFAULT_ARGS="-DGGML_NATIVE=ON"
  [[ -n $AMX_OFF ]] && DEFAULT_ARGS+=" -DCMAKE_C_FLAGS='$AMX_OFF' -DCMAKE_CXX_FLAGS='$AMX_OFF'"
  echo "bootstrap-compare: CMAKE_ARGS=${CMAKE_ARGS:-$DEFAULT_ARGS}"
  # no wheel cache: a wheel built earlier with other flags would be reused as it is
  .venv-compare/bin/python -m pip uninstall -q -y llama-cpp-python 2>/dev/null || true
  CMAKE_ARGS="${CMAKE_ARGS:-$DEFAULT_ARGS}" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    .venv-compare/bin/python -m pip install --disable-pip-version-check --no-cache-dir "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}"
fi
echo "ready: .venv-compare/bin/python ($(.venv-compare/bin/python -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__)'))"

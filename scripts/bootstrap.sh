#!/usr/bin/env bash
# Installs what altup.cpp needs on Debian 12, as root, and nothing that is already there:
# the apt packages below, and a Python virtual environment in .venv with
# converters/requirements.txt. Safe to run any number of times.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  g++ meson ninja-build cmake pkg-config   # compiler and build (Meson finds oneDNN via CMake)
  libdnnl-dev libxsimd-dev doctest-dev       # oneDNN 2.6, xsimd 8.1, doctest
  ocl-icd-opencl-dev                         # oneDNN's CMake config asks for OpenCL
  python3 python3-venv                       # the converters' virtual environment
  g++-aarch64-linux-gnu qemu-user            # ARM64 cross build, its tests run under qemu
  bible-kjv                                  # the training corpus (public-domain KJV text)
  clang libclang-rt-14-dev libomp-dev        # libFuzzer targets (fuzz/, scripts/fuzz.sh)
  libedit-dev                                # line editing and history in `altup chat`
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: installing packages needs root (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python: Debian's interpreter, so a fresh machine and this one behave the same.
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)
stamp=.venv/.requirements.sha256
want=$(cat converters/requirements.txt converters/pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "bootstrap: preparing .venv (converters/requirements.txt)"
  [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r converters/requirements.txt
  # The converter itself (altup-tools), editable so the tests use this checkout's code.
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e converters
  echo "$want" > "$stamp"
fi

#!/usr/bin/env bash
# The training / reference environment, kept apart from the test path: .venv-train with the
# converters, torch (PyPI's torch wheel pulls CUDA libraries: a few GiB) and transformers.
# Needed only to train models, regenerate the torch / transformers fixtures, run llama.cpp's
# converter (scripts/fetch-llama-converter.sh) or bench/paper_claim.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)
[[ -x .venv-train/bin/python ]] || "$PY" -m venv .venv-train
.venv-train/bin/python -m pip install -q --disable-pip-version-check -r converters/requirements.txt
.venv-train/bin/python -m pip install -q --disable-pip-version-check -e 'converters[train,reference]'
echo "ready: .venv-train/bin/python"

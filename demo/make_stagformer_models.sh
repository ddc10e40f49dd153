#!/usr/bin/env bash
# The StagFormer models docs/stagformer.md measures, and the shipped one
# (demo/kjv-stagformer-2x3-shared.gguf). The demo model's data, tokenizer and width (d = 128,
# 4 heads of 32, 2 KV heads, FFN 384, context 256), dense (K = 1), each trained STEPS steps
# (default 600) with the same seed and schedule:
#   plain-6             a plain 6-layer decoder (the 2h-layer baseline)
#   plain-3             a plain 3-layer decoder (the h-layer baseline)
#   stag-2x3            StagFormer, 2 stacks of 3 layers, separate weights
#   stag-2x3-shared     the same with shared weights (the shipped model)
#   stag-2x3-shared-w1  shared weights, cross-attention window 1 (a linear map of s_{i-1})
#   stag-2x3-w128       separate weights, cross-attention window 128
#   stag-3x2            3 stacks of 2 layers, separate weights
# RUNS="plain-6 stag-2x3" picks some. Needs .venv-train (scripts/bootstrap-train.sh). About
# 6 minutes a run on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=demo/train_runs.sh
source demo/train_runs.sh
train_setup runs/stagformer
RUNS=${RUNS:-"plain-6 plain-3 stag-2x3-shared stag-2x3 stag-2x3-shared-w1 stag-2x3-w128 stag-3x2"}
common+=(--K 1)
declare -A shape=(
  [plain-6]="--layers 6"
  [plain-3]="--layers 3"
  [stag-2x3]="--layers 6 --stacks 2"
  [stag-2x3-shared]="--layers 6 --stacks 2 --shared-stacks"
  [stag-2x3-shared-w1]="--layers 6 --stacks 2 --shared-stacks --cross-window 1"
  [stag-2x3-w128]="--layers 6 --stacks 2 --cross-window 128"
  [stag-3x2]="--layers 6 --stacks 3"
)
train_runs
if [[ -f $work/stag-2x3-shared.gguf ]]; then
  "$PY" -m altup_tools convert "$work/stag-2x3-shared/model.safetensors" --tokenizer demo/tokenizer.model \
    --out demo/kjv-stagformer-2x3-shared.gguf --dtype f16 --name kjv-stagformer-2x3-shared --no-progress
  cp "$work/stag-2x3-shared/history.json" demo/kjv-stagformer-2x3-shared.history.json
fi

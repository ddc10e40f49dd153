#!/usr/bin/env bash
# The models of docs/sequence-altup.md's table: the demo model's data, tokenizer and width
# (d = 128, 6 layers, 4 heads of 32, 2 KV heads, FFN 384, context 256, K = 1), each trained
# STEPS steps (default 600) with the same seed and schedule as demo/make_moe_models.sh:
#   dense    every layer on every token (k = 1)
#   seq-k2   Sequence-AltUp stride 2 on the inner layers (1-4; the first and last stay dense)
#   seq-k4   the same with stride 4
# RUNS="seq-k2" picks some. Needs .venv-train (scripts/bootstrap-train.sh). About 6-10 minutes
# a run on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=demo/train_runs.sh
source demo/train_runs.sh
train_setup runs/seq
RUNS=${RUNS:-"dense seq-k2 seq-k4"}
common+=(--layers 6)
declare -A shape=(
  [dense]="--K 1"
  [seq-k2]="--K 1 --seq-stride 2 --seq-layers inner"
  [seq-k4]="--K 1 --seq-stride 4 --seq-layers inner"
)
train_runs

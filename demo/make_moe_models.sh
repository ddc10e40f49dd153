#!/usr/bin/env bash
# The models of docs/moe.md's AltUp + MoE table: the demo model's data, tokenizer and width
# (d = 128, 6 layers, 4 heads of 32, 2 KV heads, FFN 384 per expert, context 256), each
# trained STEPS steps (default 600) with the same seed and schedule:
#   dense          K = 1, a dense FFN
#   moe            K = 1, 4 experts of FFN 384 in every layer, 2 used per token
#   altup-k2       AltUp K = 2 (widened embedding), a dense FFN
#   altup-k2-moe   AltUp K = 2 with the same mixture of experts
# RUNS="dense moe" picks some. Needs .venv-train (scripts/bootstrap-train.sh). About 6-10
# minutes a run on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=demo/train_runs.sh
source demo/train_runs.sh
train_setup runs/moe
RUNS=${RUNS:-"dense moe altup-k2 altup-k2-moe"}
common+=(--layers 6)
declare -A shape=(
  [dense]="--K 1"
  [moe]="--K 1 --experts 4 --experts-used 2"
  [altup-k2]="--K 2 --embedding widened"
  [altup-k2-moe]="--K 2 --embedding widened --experts 4 --experts-used 2"
)
train_runs

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
PY=${PYTHON:-.venv-train/bin/python}
STEPS=${STEPS:-600}
RUNS=${RUNS:-"dense moe altup-k2 altup-k2-moe"}
work=runs/moe
mkdir -p "$work"
[[ -f $work/kjv.txt ]] || "$PY" -m altup_tools corpus --out "$work/kjv.txt"
common=(--corpus "$work/kjv.txt" --tokenizer demo/tokenizer.model --steps "$STEPS" --batch 16 --lr 3e-3
  --warmup 100 --eval-every 100 --save-every 100 --seed 0 --d 128 --layers 6 --heads 4 --kv-heads 2
  --head-dim 32 --ffn 384 --context 256)
declare -A shape=(
  [dense]="--K 1"
  [moe]="--K 1 --experts 4 --experts-used 2"
  [altup-k2]="--K 2 --embedding widened"
  [altup-k2-moe]="--K 2 --embedding widened --experts 4 --experts-used 2"
)
# shellcheck source=demo/train_runs.sh
source demo/train_runs.sh
train_runs

#!/usr/bin/env bash
# The MatFormer AltUp model (demo/kjv-altup-k2-matformer.gguf) and the two models of its
# smallest and largest FFN width trained alone, which docs/matformer.md compares it with.
# The demo model's data, tokenizer and shape (d = 128, 6 layers, K = 2, FFN 384), its FFNs
# trained nested at four widths (384, 192, 96, 48: `--matformer 4`, the four losses summed
# each step), for STEPS steps (default 600); the two baselines for as many steps.
# Needs .venv-train (scripts/bootstrap-train.sh). About 35 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv-train/bin/python}
STEPS=${STEPS:-600}
work=runs/matformer
mkdir -p "$work"
[[ -f $work/kjv.txt ]] || "$PY" -m altup_tools corpus --out "$work/kjv.txt"
common=(--corpus "$work/kjv.txt" --tokenizer demo/tokenizer.model --steps "$STEPS" --batch 16 --lr 3e-3
  --warmup 100 --eval-every 100 --save-every 100 --seed 0 --d 128 --layers 6 --heads 4 --kv-heads 2
  --head-dim 32 --context 256 --K 2 --embedding widened)
for run in "matformer 384 4" "alone-384 384 1" "alone-48 48 1"; do
  read -r name ffn nested <<<"$run"
  echo "== training $name (FFN $ffn, --matformer $nested)"
  "$PY" -m altup_tools train "${common[@]}" --out "$work/$name" --ffn "$ffn" --matformer "$nested"
  "$PY" -m altup_tools convert "$work/$name/model.safetensors" --tokenizer demo/tokenizer.model \
    --out "$work/$name.gguf" --dtype f16 --name "kjv-altup-k2-$name" --no-progress
done
cp "$work/matformer.gguf" demo/kjv-altup-k2-matformer.gguf
cp "$work/matformer/history.json" demo/kjv-altup-k2-matformer.history.json

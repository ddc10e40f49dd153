#!/usr/bin/env bash
# Reproduces the shipped demo model, demo/kjv-altup-k2.gguf, and its tokenizer:
# an AltUp K=2 (widened) model, d=128, 6 layers, trained for 3000 steps on the King James
# Bible (Debian's bible-kjv, public domain) with a 2048-piece SentencePiece BPE tokenizer.
# About 25 minutes on the 2-core development machine. Needs scripts/bootstrap-train.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv-train/bin/python}
work=runs/demo
mkdir -p "$work"
"$PY" -m altup_tools corpus --out "$work/kjv.txt"
"$PY" -m altup_tools tokenizer --corpus "$work/kjv.txt" --vocab-size 2048 --out demo/tokenizer.model
"$PY" -m altup_tools train --corpus "$work/kjv.txt" --tokenizer demo/tokenizer.model --out "$work/train" \
  --steps 3000 --batch 16 --lr 3e-3 --warmup 100 --eval-every 250 --save-every 250 --seed 0 \
  --d 128 --layers 6 --heads 4 --kv-heads 2 --head-dim 32 --ffn 384 --context 256 --K 2 --embedding widened
"$PY" -m altup_tools convert "$work/train/model.safetensors" --tokenizer demo/tokenizer.model \
  --out demo/kjv-altup-k2.gguf --dtype f16 --name kjv-altup-k2
cp "$work/train/history.json" demo/kjv-altup-k2.history.json

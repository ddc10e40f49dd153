#!/usr/bin/env bash
# The model the quantized-file comparisons use (bench/quant_compare.py,
# tests/python/test_llama_quantized.py): a dense (K = 1) transformer trained on the King James
# Bible for 300 steps and written in llama.cpp's "llama" architecture, so both
# runtimes run it the same way. Its widths (d 256, FFN 768, 4 x 64 heads) are multiples of
# 256, so llama-quantize writes real K-quant blocks for every matrix instead of falling back.
# A trained model, not a random one: its predictions are peaked, so perplexity, KL divergence
# and greedy tokens mean something. About 6 minutes on 2 cores; needs
# scripts/bootstrap-train.sh (torch). Writes runs/quant/kjv-dense-f32.gguf.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv-train/bin/python}
STEPS=${STEPS:-300}
work=runs/quant
mkdir -p "$work"
[[ -f $work/kjv.txt ]] || "$PY" -m altup_tools corpus --out "$work/kjv.txt"
"$PY" -m altup_tools train --corpus "$work/kjv.txt" --tokenizer demo/tokenizer.model --out "$work/train" \
  --steps "$STEPS" --batch 16 --lr 3e-3 --warmup 50 --eval-every 100 --save-every 100 --seed 0 \
  --d 256 --layers 4 --heads 4 --kv-heads 2 --head-dim 64 --ffn 768 --context 256 --K 1
"$PY" -m altup_tools convert "$work/train/model.safetensors" --tokenizer demo/tokenizer.model \
  --out "$work/kjv-dense-f32.gguf" --dtype f32 --arch llama --name kjv-dense --no-progress
# The text to score: the last 2% of the corpus's lines, which training holds out for validation.
grep -v '^[[:space:]]*$' "$work/kjv.txt" >"$work/lines.txt"
total=$(wc -l <"$work/lines.txt")
tail -n $((total / 50)) "$work/lines.txt" >"$work/heldout.txt"
rm "$work/lines.txt"
echo "ready: $work/kjv-dense-f32.gguf, text $work/heldout.txt"

#!/usr/bin/env bash
# The accuracy cost of bf16 prefill on AMX (ops/matmul.h path 6: activations rounded to bf16)
# against the f32 path on the same bf16 weights, on a trained model: the shipped demo model
# with its f16 matrices stored as bf16 (bench/gguf_retype.py), scored on the last 1,000
# verses of the KJV text (Debian's bible-kjv). The f32 path is the same binary with oneDNN
# capped below AMX (ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16), which sends bf16 products back to
# widened rows; its log-probabilities are the base the AMX run is compared with. Needs a CPU
# with AMX (else both runs take the f32 path and the KLD is 0). Prints both PPL lines and
# the KLD summary. Usage: bench/bf16_accuracy.sh [CTX]   (default 256)
set -euo pipefail
cd "$(dirname "$0")/.."
ctx=${1:-256}
work=runs/bf16acc
mkdir -p "$work"
[[ -f $work/kjv.txt ]] || .venv/bin/python -m altup_tools corpus --out "$work/kjv.txt"
tail -n 1000 "$work/kjv.txt" >"$work/text.txt"
.venv/bin/python bench/gguf_retype.py demo/kjv-altup-k2.gguf "$work/demo-bf16.gguf" --to bf16
echo "== f32 path (oneDNN capped below AMX)"
ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 build/cli/altup perplexity -m "$work/demo-bf16.gguf" -f "$work/text.txt" \
  -c "$ctx" --kl-divergence-base "$work/f32-path.kl" 2>/dev/null | tail -n 2
echo "== bf16 path (AMX)"
build/cli/altup perplexity -m "$work/demo-bf16.gguf" -f "$work/text.txt" -c "$ctx" 2>/dev/null | tail -n 2
build/cli/altup perplexity -m "$work/demo-bf16.gguf" --kl-divergence-base "$work/f32-path.kl" --kl-divergence \
  2>/dev/null | tail -n 8
# For scale: what storing the weights in bf16 costs in the first place (the f16 original
# against its bf16 copy, both on the f32 path).
echo "== for scale: f16 original vs its bf16 copy, both on the f32 path"
ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 build/cli/altup perplexity -m demo/kjv-altup-k2.gguf -f "$work/text.txt" \
  -c "$ctx" --kl-divergence-base "$work/f16.kl" 2>/dev/null | tail -n 1
ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 build/cli/altup perplexity -m "$work/demo-bf16.gguf" \
  --kl-divergence-base "$work/f16.kl" --kl-divergence 2>/dev/null | tail -n 8

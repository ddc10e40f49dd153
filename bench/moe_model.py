#!/usr/bin/env python3
"""A Mixtral-shaped mixture-of-experts model with random weights, written by the real
converter as llama.cpp's "llama" architecture with experts (the layout llama.cpp's converter
writes for Mixtral: ffn_gate_inp, ffn_{gate,up,down}_exps, llama.expert_count /
expert_used_count), for measuring against llama.cpp on the same file (bench/compare.py).
Default: d = 2048, 2 layers, 8 experts of FFN 2816, 2 used per token.

    .venv/bin/python bench/moe_model.py --out runs/moe-q8_0.gguf --dtype q8_0
    .venv/bin/python bench/moe_model.py --out runs/moe-f16.gguf --dtype f16
    .llama-tools/bin/llama-quantize runs/moe-f16.gguf runs/moe-q4_k_m.gguf Q4_K_M
    .venv-compare/bin/python bench/compare.py --models q8_0=runs/moe-q8_0.gguf q4_k_m=runs/moe-q4_k_m.gguf \\
        -p 512 -n 64 --rounds 3 -t 2 --out runs/compare-moe
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "converters"))

from safetensors.numpy import save_file  # noqa: E402

from altup_tools.config import AltUpConfig  # noqa: E402
from altup_tools.convert import convert, tensor_map  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dtype", default="q8_0", choices=["f32", "f16", "bf16", "q8_0", "q4_0"])
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=2816)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--experts-used", type=int, default=2)
    a = ap.parse_args()
    heads = a.d // 128
    c = AltUpConfig(vocab_size=2048, d=a.d, n_layers=a.layers, n_heads=heads, n_kv_heads=max(1, heads // 4),
                    head_dim=128, ffn_dim=a.ffn, context_length=4096, K=1, experts=a.experts,
                    experts_used=a.experts_used)
    rng = np.random.default_rng(7)
    t = {}
    for src, (_, shape) in tensor_map(c).items():
        t[src] = (np.ones(shape, np.float32) if len(shape) == 1 else
                  rng.standard_normal(shape, np.float32) * np.float32(1 / np.sqrt(shape[-1])))
    t["predict"] = np.ones((a.layers, 1, 1), np.float32)
    t["correct"] = np.ones((a.layers, 1), np.float32)
    with tempfile.TemporaryDirectory(dir=a.out.parent) as tmp:
        ckpt = Path(tmp) / "moe.safetensors"
        save_file(t, str(ckpt), metadata={"altup_config": json.dumps(c.to_dict())})
        del t
        convert(ckpt, ROOT / "demo" / "tokenizer.model", a.out, a.dtype, name="moe-random", arch="llama")
    print(f"wrote {a.out} ({a.out.stat().st_size / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A random-weight Gemma 3n with the real model's shapes, written straight to GGUF.

No real checkpoint can be downloaded here, and speed and memory do not depend on the values
of the weights, so this stands in for Gemma 3n E2B (or E4B) in the benchmarks: every tensor
of llama.cpp's gemma3n layout with the published config's shapes and layer count, the
vocabulary of tests/fixtures/tokenizer_gemma.model padded to 262,400 entries as llama.cpp
pads Gemma's. Tensors are generated one at a time (the 2-billion-value per-layer embedding
table in chunks) and streamed into the file, so memory stays small whatever the model size.

    .venv/bin/python bench/gemma3n_shapes.py --out runs/e2b-f16.gguf --dtype f16
    .venv/bin/python bench/gemma3n_shapes.py --out runs/e2b-q8_0.gguf --dtype q8_0 --config e4b

Weights are drawn at the scale of a trained model's (matrices ~ N(0, 1/fan_in), norm scales
near 1, q / k norm scales near 1/4 so attention is not one-hot), so activations stay finite
through all layers and the model is not so chaotic that two runtimes' rounding sends them to
different tokens at once. --dtype q8_0 writes ggml's Q8_0
blocks directly (random int8 values with one fp16 scale per 32); f16 / bf16 / f32 as such.
Q4_K_M comes from llama.cpp's llama-quantize run on the f16 file (bench/gemma3n_compare.sh).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "converters"))

import gguf  # noqa: E402

from altup_tools.gemma3n import add_metadata, add_tokenizer, text_config  # noqa: E402
from altup_tools.gguf_out import add_tensor_info, atomic_output, write_streamed  # noqa: E402

# The published text configs (google/gemma-3n-E2B-it and -E4B-it, config.json's text_config),
# as differences from transformers' Gemma3nTextConfig defaults (which are E4B's).
CONFIGS = {
    "e2b": dict(num_hidden_layers=30, intermediate_size=8192, num_kv_shared_layers=10),
    "e4b": dict(num_hidden_layers=35, intermediate_size=16384, num_kv_shared_layers=15),
}
TOKENIZER = ROOT / "tests" / "fixtures" / "tokenizer_gemma.model"


class Streamed:
    """What GGUFWriter.write_tensor_data needs of an array (nbytes, tofile), made in chunks."""

    def __init__(self, nbytes: int, chunks):
        self.nbytes = nbytes
        self._chunks = chunks

    def tofile(self, f) -> None:
        for c in self._chunks():
            c.tofile(f)


def sizes(cfg: dict) -> dict:
    """The shapes this script needs, from a (checked) transformers-style text config."""
    return dict(hidden=cfg["hidden_size"], layers=cfg["num_hidden_layers"], ffn=cfg["intermediate_size"],
                heads=cfg["num_attention_heads"], kv_heads=cfg["num_key_value_heads"], head_dim=cfg["head_dim"],
                K=cfg["altup_num_inputs"], ple=cfg["hidden_size_per_layer_input"], laurel=cfg["laurel_rank"],
                vocab=cfg["vocab_size"])


def tensor_list(c: dict) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape outermost first, kind): "matrix", "embed", "norm" (~1), "qknorm" (~1/4),
    "small" (router and coefficients)."""
    H, L, K, P, hd = c["hidden"], c["layers"], c["K"], c["ple"], c["head_dim"]
    q, kv = c["heads"] * hd, c["kv_heads"] * hd
    out = [("token_embd.weight", (c["vocab"], H), "embed"),
           ("per_layer_token_embd.weight", (c["vocab"], L * P), "embed"),
           ("per_layer_model_proj.weight", (L * P, H), "matrix"),
           ("per_layer_proj_norm.weight", (P,), "norm"),
           ("altup_proj.weight", (K - 1, H, H), "matrix"),
           ("altup_unembd_proj.weight", (K - 1, H, H), "matrix"),
           ("output_norm.weight", (H,), "norm")]
    for l in range(L):
        F = c["ffn"][l]
        b = f"blk.{l}."
        out += [(b + "altup_router_norm.weight", (H,), "norm"), (b + "altup_router.weight", (K, H), "small"),
                (b + "altup_predict_coef.weight", (K * K, K), "small"),
                (b + "altup_correct_coef.weight", (K, K), "small"), (b + "altup_correct_scale.weight", (H,), "norm"),
                (b + "attn_norm.weight", (H,), "norm"), (b + "attn_q.weight", (q, H), "matrix"),
                (b + "attn_k.weight", (kv, H), "matrix"), (b + "attn_v.weight", (kv, H), "matrix"),
                (b + "attn_output.weight", (H, q), "matrix"), (b + "attn_q_norm.weight", (hd,), "qknorm"),
                (b + "attn_k_norm.weight", (hd,), "qknorm"), (b + "post_attention_norm.weight", (H,), "norm"),
                (b + "laurel_l.weight", (c["laurel"], H), "matrix"), (b + "laurel_r.weight", (H, c["laurel"]), "matrix"),
                (b + "laurel_post_norm.weight", (H,), "norm"), (b + "ffn_norm.weight", (H,), "norm"),
                (b + "ffn_gate.weight", (F, H), "matrix"), (b + "ffn_up.weight", (F, H), "matrix"),
                (b + "ffn_down.weight", (H, F), "matrix"), (b + "post_ffw_norm.weight", (H,), "norm"),
                (b + "inp_gate.weight", (P, H), "matrix"), (b + "proj.weight", (H, P), "matrix"),
                (b + "post_norm.weight", (H,), "norm")]
    return out


def std_of(kind: str, shape: tuple[int, ...], c: dict) -> float:
    if kind == "embed":
        return 1.0 / math.sqrt(c["hidden"])
    if kind == "small":
        return 0.05
    return 1.0 / math.sqrt(shape[-1])


def chunks_for(shape, kind, dtype, std, rng):
    """Yields the tensor's bytes in row chunks of about 16 Mi values."""
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    step = max(1, (16 << 20) // cols)

    def gen():
        for r0 in range(0, rows, step):
            n = min(step, rows - r0)
            if kind in ("norm", "qknorm"):
                # q / k norm scales of 1/4 keep random q·k near unit variance (attention scale is 1):
                # with 1, head size 256 makes every softmax one-hot, and the random model chaotic.
                base = 0.25 if kind == "qknorm" else 1.0
                yield (base * (1.0 + 0.05 * rng.standard_normal((n, cols), dtype=np.float32))).astype(np.float32)
                continue
            if dtype == "q8_0":
                blocks = np.empty((n * cols // 32, 34), np.uint8)
                scale = np.float16(std * math.sqrt(3.0) / 127.0)  # uniform int8 with the wanted std
                blocks[:, :2] = np.frombuffer(scale.tobytes(), np.uint8)
                blocks[:, 2:] = rng.integers(-127, 128, size=(blocks.shape[0], 32), dtype=np.int8).view(np.uint8)
                yield blocks
                continue
            x = rng.standard_normal((n, cols), dtype=np.float32) * np.float32(std)
            if dtype == "f32":
                yield x
            elif dtype == "f16":
                yield x.astype(np.float16)
            else:  # bf16: round to nearest even, as the gguf package does
                u = x.view(np.uint32)
                yield ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return gen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dtype", choices=("f32", "f16", "bf16", "q8_0"), default="f16",
                    help="matrices and embedding tables (norms stay f32; the small router / coefficient "
                         "matrices stay f32 as our converter keeps them)")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="e2b")
    ap.add_argument("--layers", type=int, default=None, help="override the layer count (default: the real one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args()
    over = dict(CONFIGS[a.config])
    if a.layers is not None:  # fewer layers for quick trials: keep the first 5 (4 sliding, 1 full) unshared
        if not 5 <= a.layers <= 64:
            ap.error("--layers must be in [5, 64]")
        over["num_hidden_layers"] = a.layers
        over["num_kv_shared_layers"] = min(over["num_kv_shared_layers"], a.layers - 5)
        over["activation_sparsity_pattern"] = [0.95 if l < 10 else 0.0 for l in range(a.layers)]
    cfg = text_config({"model_type": "gemma3n_text", **over})  # the published config, checked
    c = sizes(cfg)
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    with atomic_output(a.out) as tmp:
        w = gguf.GGUFWriter(tmp, arch="gemma3n")
        add_metadata(w, cfg, f"gemma3n-{a.config}-shapes-random-{a.dtype}")
        add_tokenizer(w, TOKENIZER, c["vocab"])
        w.add_file_type({"f32": 0, "f16": 1, "q8_0": 7, "bf16": 32}[a.dtype])
        jobs, nbytes = [], []
        for name, shape, kind in tensor_list(c):
            t = "f32" if kind in ("norm", "qknorm", "small") else a.dtype
            nbytes.append(add_tensor_info(w, name, shape, t))
            jobs.append((shape, kind, t, nbytes[-1]))

        def data_of(job):  # generated as it is written
            shape, kind, t, n = job
            return Streamed(n, chunks_for(shape, kind, t, std_of(kind, shape, c), rng))

        write_streamed(w, jobs, data_of, not a.no_progress, f"writing {a.out.name}", nbytes)
    print(f"wrote {a.out}: {sum(nbytes) / 2**30:.2f} GiB of tensors, {c['layers']} layers, {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

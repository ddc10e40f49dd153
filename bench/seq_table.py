#!/usr/bin/env python3
"""Sequence-AltUp against the dense model (docs/sequence-altup.md).

quality: the models demo/make_seq_models.sh trains (runs/seq/*.gguf: dense, stride 2 and
stride 4 on the inner layers 1-4 of 6): held-out loss (natural log of `altup perplexity` on
the last 2% of the corpus, the trainer's validation verses, 256-token chunks), the trainer's
validation loss, and decode / prefill tokens/s at the same threads (`altup bench`, median of
--rounds).

speed: the same layout at width --width (6 layers, strides 1 / 2 / 4 on layers 1-4) with
random weights, written by the real converter in each --dtypes; round after round in a
rotating order, each in a fresh process, `altup bench -p P -n N -r 1`. Reported: median
prefill and decode tokens/s and the median per-round ratio to the dense model.

    demo/make_seq_models.sh
    .venv/bin/python bench/seq_table.py quality --out bench/results/seq_quality.json
    .venv/bin/python bench/seq_table.py speed --out bench/results/seq_speed.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "converters"))
sys.path.insert(0, str(ROOT / "bench"))

from safetensors.numpy import save_file  # noqa: E402

from altup_tools.config import AltUpConfig  # noqa: E402
from altup_tools.convert import convert, tensor_map  # noqa: E402
from matformer_bench import write_result  # noqa: E402
from stagformer_bench import TOKENIZER, bench_once, held_out_table  # noqa: E402

ROWS = [("dense (k = 1)", "dense"), ("Sequence-AltUp k = 2, layers 1-4", "seq-k2"),
        ("Sequence-AltUp k = 4, layers 1-4", "seq-k4")]
STRIDES = [("k = 1", 1), ("k = 2", 2), ("k = 4", 4)]


def quality(a) -> int:
    def prefill(path: Path) -> dict:
        pp = statistics.median(bench_once(path, a.p, 1, a.threads)["pp"] for _ in range(a.rounds))
        return {"prefill_tokens_per_s": pp}

    return held_out_table(a, ROWS, prefill)


def make_model(out: Path, k: int, d: int, dtype: str) -> Path:
    head_dim = 64
    heads = d // head_dim
    c = AltUpConfig(vocab_size=2048, d=d, n_layers=6, n_heads=heads, n_kv_heads=max(1, heads // 4), head_dim=head_dim,
                    ffn_dim=(8 * d // 3 + 63) // 64 * 64, context_length=1024, K=1, seq_stride=k,
                    seq_layers="inner")
    rng = np.random.default_rng(d)  # the same weights for every stride
    t = {src: np.ones(shape, np.float32) if len(shape) == 1 else rng.standard_normal(shape, np.float32) * 0.02
         for src, (_, shape) in tensor_map(c).items()}
    t["predict"] = np.ones((6, 1, 1), np.float32)
    t["correct"] = np.ones((6, 1), np.float32)
    if k > 1:
        t["seq"] = np.tile(np.float32([1, 0, 1]), (6, 1))
    ckpt = out / f"k{k}.safetensors"
    save_file(t, str(ckpt), metadata={"altup_config": json.dumps(c.to_dict())})
    path = convert(ckpt, TOKENIZER, out / f"k{k}-{dtype}.gguf", dtype, progress=False)
    ckpt.unlink()
    return path


def speed(a) -> int:
    results = {}
    with tempfile.TemporaryDirectory(dir=a.tmp) as tmp:
        tmp = Path(tmp)
        for dtype in a.dtypes:
            files = {name: make_model(tmp, k, a.width, dtype) for name, k in STRIDES}
            runs = {name: [] for name, _ in STRIDES}
            for r in range(a.rounds):
                order = STRIDES[r % len(STRIDES):] + STRIDES[:r % len(STRIDES)]
                for name, _ in order:
                    runs[name].append(bench_once(files[name], a.p, a.n, a.threads))
                print(f"{dtype} round {r + 1}: " +
                      ", ".join(f"{k} pp {v[-1]['pp']:.1f} tg {v[-1]['tg']:.1f}" for k, v in runs.items()), flush=True)
            rows = []
            for name, k in STRIDES:
                ratio = lambda key: statistics.median(x[key] / y[key] for x, y in zip(runs[name], runs["k = 1"]))  # noqa: E731
                rows.append({"model": name, "stride": k,
                             "prefill_tokens_per_s": statistics.median(x["pp"] for x in runs[name]),
                             "decode_tokens_per_s": statistics.median(x["tg"] for x in runs[name]),
                             "prefill_vs_dense": ratio("pp"), "decode_vs_dense": ratio("tg")})
                print(f"{dtype:5} {name:<6} pp{a.p} {rows[-1]['prefill_tokens_per_s']:8.1f} t/s "
                      f"({rows[-1]['prefill_vs_dense']:.2f}x)  tg{a.n} {rows[-1]['decode_tokens_per_s']:8.1f} t/s "
                      f"({rows[-1]['decode_vs_dense']:.2f}x)", flush=True)
            results[dtype] = rows
    write_result(a.out, {"width": a.width, "layers": 6, "strided_layers": [1, 2, 3, 4], "threads": a.threads,
                         "rounds": a.rounds, "p": a.p, "n": a.n, "results": results})
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality", help="the trained models: held-out loss, prefill and decode speed")
    q.add_argument("--runs", type=Path, default=ROOT / "runs" / "seq")
    q.add_argument("-p", type=int, default=256, help="prompt tokens (ppP)")
    q.add_argument("-n", type=int, default=128)
    q.add_argument("--rounds", type=int, default=3)
    q.add_argument("-t", "--threads", type=int, default=2)
    q.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("speed", help="random-weight models at a larger width: prefill and decode speed")
    s.add_argument("--width", type=int, default=1024)
    s.add_argument("--dtypes", nargs="+", default=["f32", "q8_0"])
    s.add_argument("--rounds", type=int, default=5)
    s.add_argument("-p", type=int, default=256, help="prompt tokens (ppP)")
    s.add_argument("-n", type=int, default=64, help="decode tokens (tgN)")
    s.add_argument("-t", "--threads", type=int, default=2)
    s.add_argument("--tmp", type=Path, default=None, help="where the models are written (default: the system's)")
    s.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    return quality(a) if a.cmd == "quality" else speed(a)


if __name__ == "__main__":
    sys.exit(main())

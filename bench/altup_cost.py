#!/usr/bin/env python3
"""The paper's central claim, measured on this runtime: what does a K-times wider state cost
at decode time? For each width d, models with random weights and the same depth:

    dense_d        K = 1, width d
    altup_k2       K = 2, widened embedding        altup_k4       K = 4, widened
    recycled_k2    K = 2, Recycled-AltUp           recycled_k4    K = 4, Recycled
    dense_2d       K = 1, width 2d

are written as f16 GGUF by the real converter, then `altup bench -p 0 -n N` measures their
decode speed, the models interleaved round after round so machine noise falls on all alike.
Prints a table (median ms per token, and the median over rounds of each round's ratio to
dense-d) and writes results.json and, with matplotlib, results.png.

    .venv/bin/python bench/altup_cost.py [--widths 512 1024 2048] [--layers 4] [--rounds 5]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "converters"))

from safetensors.numpy import save_file  # noqa: E402

from altup_tools.config import AltUpConfig  # noqa: E402
from altup_tools.convert import convert, tensor_map  # noqa: E402

VARIANTS = [("dense_d", 1, "widened", 1), ("altup_k2", 2, "widened", 1), ("recycled_k2", 2, "recycled", 1),
            ("altup_k4", 4, "widened", 1), ("recycled_k4", 4, "recycled", 1), ("dense_2d", 1, "widened", 2)]


def make_model(out: Path, name: str, d: int, K: int, embedding: str, layers: int, tokenizer: Path) -> Path:
    head_dim = 64
    heads = d // head_dim
    c = AltUpConfig(vocab_size=2048, d=d, n_layers=layers, n_heads=heads, n_kv_heads=max(1, heads // 4),
                    head_dim=head_dim, ffn_dim=(8 * d // 3 + 63) // 64 * 64, context_length=512, K=K,
                    embedding=embedding)
    rng = np.random.default_rng(d * 10 + K)
    t = {}
    for src, (_, shape) in tensor_map(c).items():
        t[src] = np.ones(shape, np.float32) if len(shape) == 1 else (rng.standard_normal(shape, np.float32) * 0.02)
    t["predict"] = np.tile(np.eye(K, dtype=np.float32), (layers, 1, 1)) + 0.01
    t["correct"] = np.ones((layers, K), np.float32)
    ckpt = out / f"{name}.safetensors"
    save_file(t, str(ckpt), metadata={"altup_config": json.dumps(c.to_dict())})
    gguf = convert(ckpt, tokenizer, out / f"{name}.gguf", "f16", progress=False)
    ckpt.unlink()
    return gguf


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=64, help="decoded tokens per measurement")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--altup", type=Path, default=ROOT / "build" / "cli" / "altup")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "altup_cost")
    ap.add_argument("--make-only", action="store_true", help="write the models (OUT/d*/) and stop")
    ap.add_argument("--keep", action="store_true", help="keep the models after measuring (reused when present)")
    args = ap.parse_args()
    if not args.altup.exists():
        print(f"altup_cost: {args.altup} is missing: build first (scripts/build.sh build)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer = ROOT / "demo" / "tokenizer.model"
    results = []
    # Models first (they take a while at d = 2048), then the measurements.
    for d in args.widths:
        work = args.out / f"d{d}"
        work.mkdir(exist_ok=True)
        for name, K, emb, mult in VARIANTS:
            if not (work / f"{name}.gguf").exists():
                print(f"d={d}: making {name}", flush=True)
                make_model(work, name, d * mult, K, emb, args.layers, tokenizer)
    if args.make_only:
        return 0
    for d in args.widths:
        work = args.out / f"d{d}"
        try:
            models = {name: work / f"{name}.gguf" for name, *_ in VARIANTS}
            times = {name: [] for name in models}
            for r in range(args.rounds):
                for name, path in models.items():
                    out = subprocess.run([str(args.altup), "bench", "-m", str(path), "-p", "0", "-n", str(args.tokens),
                                          "-r", "1", "-t", str(args.threads), "-o", "json"],
                                         capture_output=True, text=True, check=True)
                    tps = json.loads(out.stdout)["tests"][0]["tokens_per_s"]["median"]
                    times[name].append(1000.0 / tps)
            for name, path in models.items():
                ms = statistics.median(times[name])
                # The ratio is taken within each round (dense-d measured seconds before), then the
                # median over rounds: this machine's memory speed drifts between rounds.
                per_round = [t / b for t, b in zip(times[name], times["dense_d"])]
                ratio = statistics.median(per_round)
                results.append({"d": d, "model": name, "ms_per_token": ms, "ratio_to_dense_d": ratio,
                                "round_ratios": per_round, "runs_ms": times[name],
                                "gguf_mib": round(path.stat().st_size / 2**20, 1)})
                print(f"  {name:12s} {ms:8.3f} ms/token  {ratio:5.2f}x dense-d (per round {min(per_round):.2f}-"
                      f"{max(per_round):.2f})", flush=True)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    names = [v[0] for v in VARIANTS]
    print("\n| d | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for d in args.widths:
        row = {r["model"]: r for r in results if r["d"] == d}
        print(f"| {d} | " + " | ".join(f"{row[n]['ms_per_token']:.2f} ms ({row[n]['ratio_to_dense_d']:.2f}x)" for n in names) + " |")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot)")
        return 0
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(names)
    for i, n in enumerate(names):
        ax.bar([j + i * width for j in range(len(args.widths))],
               [next(r["ratio_to_dense_d"] for r in results if r["d"] == d and r["model"] == n) for d in args.widths],
               width, label=n)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(args.widths))], [f"d = {d}" for d in args.widths])
    ax.set_ylabel("decode time per token / dense-d")
    ax.set_title(f"Decode cost of AltUp on this runtime ({args.layers} layers, f16, {args.threads} threads)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "results.png", dpi=120)
    print(f"wrote {args.out / 'results.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""StagFormer against plain decoders of the same width (docs/stagformer.md).

speed: for a width d and a stack depth h, models with random weights, written by the real
converter in each --dtypes:
    plain-h            a plain decoder of h layers
    plain-2h           a plain decoder of 2h layers
    stag-2xh           StagFormer, 2 stacks of h, separate weights
    stag-2xh-shared    StagFormer, 2 stacks of h, shared weights
then, round after round in a rotating order (machine noise falls on all alike), each in a
fresh process: `altup bench -p P -n N -r 1 -t T`, and both StagFormers once more with
ALTUP_STAGGER=0 (their decode steps run the stacks one after the other: what the p-row pass,
or the stacks as branches on groups of threads, buys). By default the decode tuner chooses
whether a separate-weights step runs its stacks as branches; the separate model runs once
more with ALTUP_BRANCHES=1, which always does. Reported: median decode tokens/s and ms per step, prefill tokens/s, and the median of
the per-round ratios of decode speed to plain-2h.

quality: the models demo/make_stagformer_models.sh trains (runs/stagformer/*.gguf): held-out
loss (natural log of `altup perplexity` on the last 2% of the corpus, the trainer's
validation verses, 256-token chunks) and decode speed at the same threads.

    .venv/bin/python bench/stagformer_bench.py speed --out bench/results/stagformer_speed.json
    .venv/bin/python bench/stagformer_bench.py quality --out bench/results/stagformer_quality.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
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

ALTUP = ROOT / "build" / "cli" / "altup"
TOKENIZER = ROOT / "demo" / "tokenizer.model"


def altup(args: list[str], env: dict | None = None, stdout_only: bool = False) -> str:
    r = subprocess.run([str(ALTUP), *args], capture_output=True, text=True, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise RuntimeError(f"altup {' '.join(args)} failed:\n{r.stderr.strip()}")
    return r.stdout if stdout_only else r.stdout + r.stderr


def make_model(out: Path, name: str, d: int, layers: int, stacks: int, shared: bool, dtype: str) -> Path:
    head_dim = 64
    heads = d // head_dim
    c = AltUpConfig(vocab_size=2048, d=d, n_layers=layers, n_heads=heads, n_kv_heads=max(1, heads // 4),
                    head_dim=head_dim, ffn_dim=(8 * d // 3 + 63) // 64 * 64, context_length=1024, K=1,
                    stacks=stacks, shared_stacks=shared)
    rng = np.random.default_rng(d + 10 * layers + stacks)
    t = {src: np.ones(shape, np.float32) if len(shape) == 1 else rng.standard_normal(shape, np.float32) * 0.02
         for src, (_, shape) in tensor_map(c).items()}
    if not stacks:  # a plain file: the dense AltUp coefficients
        t["predict"] = np.ones((layers, 1, 1), np.float32)
        t["correct"] = np.ones((layers, 1), np.float32)
    ckpt = out / f"{name}.safetensors"
    save_file(t, str(ckpt), metadata={"altup_config": json.dumps(c.to_dict())})
    # A plain model as "llama": dense layers without AltUp's coefficients, as a StagFormer's stacks.
    path = convert(ckpt, TOKENIZER, out / f"{name}-{dtype}.gguf", dtype, progress=False,
                   arch="altup" if stacks else "llama")
    ckpt.unlink()
    return path


def bench_once(model: Path, p: int, n: int, threads: int, env: dict | None = None) -> dict:
    j = json.loads(altup(["bench", "-m", str(model), "-p", str(p), "-n", str(n), "-r", "1", "-t", str(threads),
                          "-o", "json"], env, stdout_only=True))
    tests = {t["test"]: t["tokens_per_s"]["median"] for t in j["tests"]}
    return {"pp": tests.get(f"pp{p}"), "tg": tests[f"tg{n}"], "peak_rss_mib": j["peak_rss_mib"]}


def speed(a) -> int:
    h, d = a.depth, a.width
    variants = [("plain-h", h, 0, False, None), ("plain-2h", 2 * h, 0, False, None),
                ("stag-2xh", 2 * h, 2, False, None), ("stag-2xh-shared", 2 * h, 2, True, None),
                ("stag-2xh, stacks one after the other", 2 * h, 2, False, {"ALTUP_STAGGER": "0"}),
                ("stag-2xh, stacks always as branches", 2 * h, 2, False, {"ALTUP_BRANCHES": "1"}),
                ("stag-2xh-shared, stacks one after the other", 2 * h, 2, True, {"ALTUP_STAGGER": "0"})]
    results = {}
    with tempfile.TemporaryDirectory(dir=a.tmp) as tmp:
        tmp = Path(tmp)
        for dtype in a.dtypes:
            files = {}
            for name, layers, stacks, shared, _ in variants:
                if "," in name:  # the same file as the row before it
                    continue
                files[name] = make_model(tmp, name, d, layers, stacks, shared, dtype)
                print(f"made {files[name].name} ({files[name].stat().st_size / 2**20:.0f} MiB)", flush=True)
            runs = {name: [] for name, *_ in variants}
            for r in range(a.rounds):
                order = variants[r % len(variants):] + variants[:r % len(variants)]
                for name, _, _, _, env in order:
                    file = files[name.split(",")[0]]
                    runs[name].append(bench_once(file, a.p, a.n, a.threads, env))
                print(f"{dtype} round {r + 1}: " + ", ".join(f"{k} {v[-1]['tg']:.1f}" for k, v in runs.items()),
                      flush=True)
            rows = []
            for name, *_ in variants:
                tg = [x["tg"] for x in runs[name]]
                ratio = [x["tg"] / y["tg"] for x, y in zip(runs[name], runs["plain-2h"])]
                rows.append({"model": name, "decode_tokens_per_s": statistics.median(tg),
                             "ms_per_step": 1000 / statistics.median(tg),
                             "prefill_tokens_per_s": statistics.median(x["pp"] for x in runs[name]),
                             "peak_rss_mib": statistics.median(x["peak_rss_mib"] for x in runs[name]),
                             "decode_vs_plain_2h": statistics.median(ratio), "decode_vs_plain_2h_rounds": ratio,
                             "decode_tokens_per_s_rounds": tg})
                print(f"{dtype:5} {name:<45} tg{a.n} {rows[-1]['decode_tokens_per_s']:8.1f} t/s "
                      f"({rows[-1]['ms_per_step']:6.2f} ms/step, {rows[-1]['decode_vs_plain_2h']:.2f}x plain-2h)  "
                      f"pp{a.p} {rows[-1]['prefill_tokens_per_s']:8.1f} t/s", flush=True)
            results[dtype] = rows
    write_result(a.out, {"width": d, "stack_depth": h, "threads": a.threads, "rounds": a.rounds, "p": a.p, "n": a.n,
                         "results": results})
    return 0


QUALITY_ROWS = [("plain 3 layers (h)", "plain-3"), ("plain 6 layers (2h)", "plain-6"),
                ("StagFormer 2x3, separate weights", "stag-2x3"), ("StagFormer 2x3, shared weights", "stag-2x3-shared"),
                ("StagFormer 2x3, shared, window 1", "stag-2x3-shared-w1"),
                ("StagFormer 2x3, separate, window 128", "stag-2x3-w128"),
                ("StagFormer 3x2, separate weights", "stag-3x2")]


def held_out_table(a, rows: list[tuple[str, str]], extra=None) -> int:
    """For each (label, run name) of a.runs: held-out loss (the natural log of `altup
    perplexity` on the trainer's validation verses, the last 2% of the corpus, 256-token
    chunks), the trainer's last validation loss and decode tokens/s (`altup bench -p 0 -n N`,
    median of a.rounds); extra(path) adds fields. Prints a table, writes a.out."""
    corpus = a.runs / "kjv.txt"
    if not corpus.is_file():
        print(f"{corpus} is missing: train the models first", file=sys.stderr)
        return 1
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    held_out = lines[-max(1, int(len(lines) * 0.02)):]  # the trainer's validation verses (val_fraction 0.02)
    out_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "held_out.txt"
        text.write_text("\n".join(held_out) + "\n", encoding="utf-8")
        for label, name in rows:
            path = a.runs / f"{name}.gguf"
            if not path.is_file():
                print(f"skipping {label}: {path} is missing", flush=True)
                continue
            out = altup(["perplexity", "-m", str(path), "-f", str(text), "-c", "256", "-t", str(a.threads)])
            ppl = float(re.search(r"PPL = ([0-9.]+)", out).group(1))
            tg = statistics.median(bench_once(path, 0, a.n, a.threads)["tg"] for _ in range(a.rounds))
            hist = json.loads((a.runs / name / "history.json").read_text())[-1]
            out_rows.append({"model": label, "file": path.name, "held_out_loss": math.log(ppl), "ppl": ppl,
                             "trainer_val_loss": hist["val_loss"], "steps": hist["step"], "decode_tokens_per_s": tg,
                             **(extra(path) if extra else {})})
            print(f"{label:<40} loss {math.log(ppl):.4f}  PPL {ppl:7.2f}  tg{a.n} {tg:8.1f} t/s", flush=True)
    write_result(a.out, {"threads": a.threads, "held_out_lines": len(held_out), "rows": out_rows})
    return 0


def quality(a) -> int:
    return held_out_table(a, QUALITY_ROWS)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed", help="random-weight models: decode and prefill speed")
    s.add_argument("--width", type=int, default=1024)
    s.add_argument("--depth", type=int, default=4, help="layers per stack (h)")
    s.add_argument("--dtypes", nargs="+", default=["f32", "q8_0"])
    s.add_argument("--rounds", type=int, default=5)
    s.add_argument("-p", type=int, default=64, help="prompt tokens (ppP)")
    s.add_argument("-n", type=int, default=64, help="decode tokens (tgN)")
    s.add_argument("-t", "--threads", type=int, default=2)
    s.add_argument("--tmp", type=Path, default=None, help="where the models are written (default: the system's)")
    s.add_argument("--out", type=Path, required=True)
    q = sub.add_parser("quality", help="the trained models: held-out loss and decode speed")
    q.add_argument("--runs", type=Path, default=ROOT / "runs" / "stagformer")
    q.add_argument("-n", type=int, default=128)
    q.add_argument("--rounds", type=int, default=3)
    q.add_argument("-t", "--threads", type=int, default=2)
    q.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    return speed(a) if a.cmd == "speed" else quality(a)


if __name__ == "__main__":
    sys.exit(main())

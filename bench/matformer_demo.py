#!/usr/bin/env python3
"""The MatFormer demo model's sub-models against models of the same size trained alone: held-out
loss (natural log of `altup perplexity` on the held-out verses, the last 2% of the corpus the
trainer never saw, 256-token chunks) and decode speed (`altup bench -p 0 -n N`, median of -r
repetitions), each sub-model chosen at load with --ffn-widths from the one MatFormer file.

    demo/make_matformer_model.sh                      # the models (runs/matformer/*.gguf)
    .venv/bin/python bench/matformer_demo.py --out bench/results/matformer_demo.json

Prints a table and writes OUT (JSON).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from matformer_bench import write_result  # noqa: E402

ALTUP = ROOT / "build" / "cli" / "altup"

# (label, model file in the run folder, --ffn-widths; "" = the file's own width)
ROWS = [
    ("MatFormer F/8 (48)", "matformer.gguf", "48"),
    ("MatFormer F/4 (96)", "matformer.gguf", "96"),
    ("MatFormer F/2 (192)", "matformer.gguf", "192"),
    ("MatFormer F (384)", "matformer.gguf", ""),
    ("MatFormer mix 48,48,96,96,192,192", "matformer.gguf", "48,48,96,96,192,192"),
    ("MatFormer mix 192,192,96,96,48,48", "matformer.gguf", "192,192,96,96,48,48"),
    ("MatFormer mix 384,192,192,96,96,48", "matformer.gguf", "384,192,192,96,96,48"),
    ("trained alone, FFN 48", "alone-48.gguf", ""),
    ("trained alone, FFN 384", "alone-384.gguf", ""),
]


def run(args: list[str]) -> str:
    r = subprocess.run([str(ALTUP), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"altup {' '.join(args)} failed:\n{r.stderr.strip()}")
    return r.stdout + r.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "matformer")
    ap.add_argument("-n", type=int, default=128, help="decode tokens per repetition")
    ap.add_argument("-r", type=int, default=5, help="repetitions")
    ap.add_argument("-t", type=int, default=1, help="threads")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    corpus = a.runs / "kjv.txt"
    if not corpus.is_file():
        print(f"matformer_demo: {corpus} is missing: run demo/make_matformer_model.sh first", file=sys.stderr)
        return 1
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    held_out = lines[-max(1, int(len(lines) * 0.02)):]  # the trainer's validation lines (val_fraction 0.02)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "held_out.txt"
        text.write_text("\n".join(held_out) + "\n", encoding="utf-8")
        for label, model, widths in ROWS:
            path = a.runs / model
            extra = ["--ffn-widths", widths] if widths else []
            out = run(["perplexity", "-m", str(path), "-f", str(text), "-c", "256", "-t", str(a.t), *extra])
            ppl = float(re.search(r"PPL = ([0-9.]+)", out).group(1))
            b = json.loads(run(["bench", "-m", str(path), "-p", "0", "-n", str(a.n), "-r", str(a.r), "-t", str(a.t),
                                "-o", "json", *extra]))
            tg = next(t for t in b["tests"] if t["test"] == f"tg{a.n}")["tokens_per_s"]["median"]
            rows.append({"model": label, "file": model, "ffn_widths": widths or "(file)", "held_out_loss": math.log(ppl),
                         "ppl": ppl, "decode_tokens_per_s": tg})
            print(f"{label:<40} loss {math.log(ppl):.4f}  PPL {ppl:8.2f}  tg{a.n} {tg:8.1f} t/s", flush=True)
    write_result(a.out, {"threads": a.t, "held_out_lines": len(held_out), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())

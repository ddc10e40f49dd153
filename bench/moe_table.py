#!/usr/bin/env python3
"""AltUp + MoE at the demo model's size (docs/moe.md): dense, a mixture of experts, AltUp
K = 2 and AltUp K = 2 with the same experts, trained alike (demo/make_moe_models.sh). For
each: held-out loss and decode speed (as bench/stagformer_bench.py quality measures them),
and the parameters: all of them and those a token uses (the k of E experts), both without
the embedding table.

    demo/make_moe_models.sh
    .venv/bin/python bench/moe_table.py --out bench/results/moe_altup_table.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from stagformer_bench import held_out_table  # noqa: E402

ROWS = [("dense", "dense"), ("MoE, 4 experts, 2 used", "moe"), ("AltUp K = 2", "altup-k2"),
        ("AltUp K = 2 + MoE", "altup-k2-moe")]


def parameters(path: Path) -> dict:
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    counts = {k.rsplit(".", 1)[-1]: int(f.parts[-1][0]) for k, f in r.fields.items()
              if k.endswith((".expert_count", ".expert_used_count"))}
    total = active = 0
    for t in r.tensors:
        if t.name == "token_embd.weight":
            continue
        n = int(t.n_elements)
        total += n
        active += n * counts["expert_used_count"] // counts["expert_count"] if t.name.endswith("_exps.weight") else n
    return {"parameters": total, "parameters_per_token": active}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "moe")
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    return held_out_table(ap.parse_args(), ROWS, parameters)


if __name__ == "__main__":
    sys.exit(main())

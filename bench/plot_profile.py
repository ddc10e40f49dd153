#!/usr/bin/env python3
"""Plots an `altup profile --format json` result: per-layer stacked bars by category
(attention, FFN, AltUp predict, AltUp correct, ...) and each phase's op shares.

    build/cli/altup profile -m M.gguf --format json > prof.json
    .venv/bin/python bench/plot_profile.py prof.json -o prof.png
"""
import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    try:
        rows = json.loads(args.profile.read_text())["rows"]
        phases = [p for p in ("prefill", "decode") if any(r["phase"] == p for r in rows)]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"plot_profile: {args.profile} is not an `altup profile --format json` result ({e!r})", file=sys.stderr)
        return 1
    if not phases:
        print(f"plot_profile: {args.profile} has no prefill or decode rows", file=sys.stderr)
        return 1
    try:
        import matplotlib
    except ImportError:
        print("plot_profile: needs matplotlib (in .venv: bash scripts/bootstrap.sh)", file=sys.stderr)
        return 1
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(phases), 2, figsize=(12, 4 * len(phases)), squeeze=False)
    for i, phase in enumerate(phases):
        rs = [r for r in rows if r["phase"] == phase]
        by_layer = defaultdict(lambda: defaultdict(float))
        for r in rs:
            by_layer[r["layer"]][r["category"]] += r["total_ms"]
        layers = sorted(by_layer)
        cats = ["attention", "ffn", "predict", "correct", "router", "streams", "ple", "laurel", "altup", "embedding",
                "output", "other"]
        bottom = [0.0] * len(layers)
        ax = axes[i][0]
        # One fixed colour per category: tab20's 10 strong hues first, then their light ones.
        palette = plt.get_cmap("tab20").colors
        order = list(range(0, 20, 2)) + list(range(1, 20, 2))
        for c in cats:
            vals = [by_layer[l][c] for l in layers]
            if any(vals):
                ax.bar([str(l) if l >= 0 else "-" for l in layers], vals, bottom=bottom, label=c,
                       color=palette[order[cats.index(c)]])
                bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_title(f"{phase}: ms per layer")
        ax.set_xlabel("layer (- = outside the layer stack)")
        ax.legend(fontsize=8)
        by_node = defaultdict(float)
        for r in rs:
            by_node[r["node"]] += r["total_ms"]
        top = sorted(by_node.items(), key=lambda kv: -kv[1])[:12]
        ax = axes[i][1]
        ax.barh([k for k, _ in top][::-1], [v / sum(by_node.values()) * 100 for _, v in top][::-1])
        ax.set_title(f"{phase}: share of time by op (%)")
    fig.tight_layout()
    tmp = args.out.with_name(args.out.name + ".tmp")
    try:
        fig.savefig(tmp, dpi=110, format="png")
        tmp.replace(args.out)  # a complete file or none
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

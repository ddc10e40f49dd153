#!/usr/bin/env python3
"""llama.cpp's own quantized files in altup.cpp: accuracy against llama.cpp on the same files.

The base model (bench/make_quant_model.sh: a trained dense model in llama.cpp's "llama"
architecture, widths a multiple of 256) is quantized by llama.cpp's llama-quantize
(scripts/build-llama-tools.sh) to each type asked for. Then, per file:
  - greedy token ids of the same prompt for N steps in altup.cpp (its Python binding) and in
    llama.cpp (llama-cpp-python), after the same prompt ids: the first step they part, if any;
  - the KL divergence from the base model's predictions on a held-out text, by each tool's
    own perplexity program on its own base logits: `altup perplexity --kl-divergence` and
    `llama-perplexity --kl-divergence`, same chunks (--ctx), same text.
Prints a table and writes OUT/results.json. Run in .venv-compare (llama-cpp-python):

    bash scripts/bootstrap-compare.sh && bash scripts/build-llama-tools.sh && bash bench/make_quant_model.sh
    .venv-compare/bin/python bench/quant_compare.py [--types Q8_0 Q4_0 Q4_K_M Q5_K_M] [-c 256 --chunks 40]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "converters"))

from compare import CompareError, check_ids  # noqa: E402

TOOLS = ROOT / ".llama-tools" / "bin"


def sh(cmd: list, what: str, until: str | None = None) -> str:
    """Runs a command; with `until`, again (up to 20 times) while its output lacks that pattern:
    llama.cpp's tools print through a logging thread that is not drained at exit, so about one
    run in four here ends (status 0) without its final statistics."""
    for _ in range(20):
        r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
        if r.returncode != 0:
            raise CompareError(f"{what} failed ({r.returncode}):\n{(r.stdout + r.stderr).strip()[-3000:]}")
        if until is None or re.search(until, r.stdout + r.stderr, re.M):
            break
    return r.stdout + r.stderr


def grab(pattern: str, text: str, what: str) -> float:
    m = re.search(pattern, text, re.M)
    if not m:
        raise CompareError(f"no {what} in the output:\n{text[-2000:]}")
    return float(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, default=ROOT / "runs" / "quant" / "kjv-dense-f32.gguf")
    ap.add_argument("--text", type=Path, default=ROOT / "runs" / "quant" / "heldout.txt")
    ap.add_argument("--types", nargs="+", default=["Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M"])
    ap.add_argument("-c", "--ctx", type=int, default=256)
    ap.add_argument("--chunks", type=int, default=40)
    ap.add_argument("--greedy", type=int, default=32, help="greedy steps compared (default 32)")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "quant-compare")
    ap.add_argument("--altup", type=Path, default=ROOT / "build" / "cli" / "altup")
    args = ap.parse_args()
    for need, how in ((args.base, "bench/make_quant_model.sh"), (args.text, "bench/make_quant_model.sh"),
                      (TOOLS / "llama-quantize", "scripts/build-llama-tools.sh"),
                      (args.altup, "scripts/build.sh build")):
        if not need.exists():
            print(f"quant_compare: {need} is missing: run {how}", file=sys.stderr)
            return 1
    args.out.mkdir(parents=True, exist_ok=True)
    t = ["-t", args.threads]
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "base": args.base.name,
               "text": args.text.name, "ctx": args.ctx, "chunks": args.chunks, "rows": []}
    try:
        ours_base, theirs_base = args.out / "base.altup-kl", args.out / "base.llama-kl"
        common = ["-f", args.text, "-c", args.ctx, "--chunks", args.chunks, *t]
        out = sh([args.altup, "perplexity", "-m", args.base, *common, "--kl-divergence-base", ours_base],
                 "altup perplexity (base)")
        base_ppl_ours = grab(r"^PPL = ([0-9.]+)", out, "altup PPL")
        out = sh([TOOLS / "llama-perplexity", "-m", args.base, *common, "--kl-divergence-base", theirs_base],
                 "llama-perplexity (base)", until=r"Final estimate")
        base_ppl_theirs = grab(r"Final estimate: PPL = ([0-9.]+)", out, "llama.cpp PPL")
        print(f"base {args.base.name}: PPL altup {base_ppl_ours:.4f}, llama.cpp {base_ppl_theirs:.4f}")
        results["base_ppl"] = {"altup": base_ppl_ours, "llama_cpp": base_ppl_theirs}
        for qtype in args.types:
            q = args.out / f"{args.base.stem.replace('-f32', '')}-{qtype.lower()}.gguf"
            if not q.exists():
                sh([TOOLS / "llama-quantize", args.base, q, qtype, args.threads], f"llama-quantize {qtype}")
            chk = check_ids(q, args.greedy, args.threads)
            ours = sh([args.altup, "perplexity", "-m", q, "--kl-divergence-base", ours_base, "--kl-divergence",
                       "--chunks", args.chunks, *t], f"altup perplexity --kl-divergence ({qtype})")
            theirs = sh([TOOLS / "llama-perplexity", "-m", q, "--kl-divergence-base", theirs_base,
                         "--kl-divergence", "--chunks", args.chunks, *t],
                        f"llama-perplexity --kl-divergence ({qtype})", until=r"Mean\s+KLD:")
            row = {"type": qtype, "file": q.name, "mib": round(q.stat().st_size / 2**20, 2),
                   "greedy_same": chk["same"], "greedy_agree_first": chk["agree_first"], "greedy_steps": args.greedy,
                   "altup_kld": grab(r"^Mean KLD\s*=\s*([0-9.eE+-]+)", ours, "altup KLD"),
                   "llama_cpp_kld": grab(r"Mean\s+KLD:\s+([0-9.eE+-]+)", theirs, "llama.cpp KLD"),
                   "altup_ppl": grab(r"^PPL = ([0-9.]+)", ours, "altup PPL"),
                   "llama_cpp_ppl": grab(r"Mean PPL\(Q\)\s*:\s*([0-9.]+)", theirs, "llama.cpp PPL"),
                   "altup_top1_pct": grab(r"^Same top-1\s*=\s*([0-9.]+)", ours, "altup top-1"),
                   "llama_cpp_top1_pct": grab(r"Same top p:\s*([0-9.]+)", theirs, "llama.cpp top-1")}
            row["kld_ratio"] = row["altup_kld"] / row["llama_cpp_kld"] if row["llama_cpp_kld"] else None
            results["rows"].append(row)
            print(f"{qtype:7s} greedy {'same' if chk['same'] else 'parts at ' + str(chk['agree_first'])}, "
                  f"KLD altup {row['altup_kld']:.6f} llama.cpp {row['llama_cpp_kld']:.6f} "
                  f"(ratio {row['kld_ratio']:.3f}), PPL {row['altup_ppl']:.4f} / {row['llama_cpp_ppl']:.4f}",
                  flush=True)
    except CompareError as e:
        print(f"quant_compare: {e}", file=sys.stderr)
        return 1
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\n| type | MiB | greedy {args.greedy} same | KLD altup.cpp | KLD llama.cpp | ratio | "
          "PPL altup.cpp | PPL llama.cpp | same top-1 % altup.cpp / llama.cpp |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results["rows"]:
        print(f"| {r['type']} | {r['mib']} | {'yes' if r['greedy_same'] else 'no, from ' + str(r['greedy_agree_first'])}"
              f" | {r['altup_kld']:.6f} | {r['llama_cpp_kld']:.6f} | {r['kld_ratio']:.3f} | {r['altup_ppl']:.4f} | "
              f"{r['llama_cpp_ppl']:.4f} | {r['altup_top1_pct']:.2f} / {r['llama_cpp_top1_pct']:.2f} |")
    print(f"\nwrote {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

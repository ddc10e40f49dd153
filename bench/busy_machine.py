#!/usr/bin/env python3
"""Decode speed on a busy machine: `altup bench` beside N busy processes (each a tight loop on
one core), at the default thread count and at fixed counts, in interleaved rounds.

    .venv/bin/python bench/busy_machine.py [--model M.gguf] [--busy 2] [--rounds 5] [--out F.json]

For each round and setting it runs `altup bench -p 0 -n N -r R -o json` and keeps the median
tokens/s; it prints, per setting, the median over rounds and the median of each round's ratio
to that round's `-t 1`. The busy processes are stopped however the script ends.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def spin() -> None:
    while True:
        pass


def bench(altup: Path, model: Path, threads: str, n: int, reps: int) -> tuple[float, int]:
    cmd = [str(altup), "bench", "-m", str(model), "-p", "0", "-n", str(n), "-r", str(reps), "-o", "json"]
    if threads != "default":
        cmd += ["-t", threads]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    d = json.loads(out)
    return d["tests"][0]["tokens_per_s"]["median"], d.get("decode_threads", 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--altup", type=Path, default=ROOT / "build" / "cli" / "altup")
    ap.add_argument("--model", type=Path, default=ROOT / "demo" / "kjv-altup-k2.gguf")
    ap.add_argument("--busy", type=int, default=2, help="busy processes beside the benchmark (default 2)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=128, help="tokens decoded per repetition (default 128)")
    ap.add_argument("-r", type=int, default=3, help="repetitions per run (default 3)")
    ap.add_argument("--threads", nargs="+", default=["default", "1", "2", "8"])
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if "1" not in a.threads:
        a.threads.append("1")
    busy = [mp.Process(target=spin, daemon=True) for _ in range(a.busy)]
    for p in busy:
        p.start()
    rows: dict[str, list[float]] = {t: [] for t in a.threads}
    chosen: dict[str, list[int]] = {t: [] for t in a.threads}
    try:
        time.sleep(0.5)
        for r in range(a.rounds):
            order = a.threads if r % 2 == 0 else list(reversed(a.threads))
            for t in order:
                tps, dt = bench(a.altup, a.model, t, a.n, a.r)
                rows[t].append(tps)
                chosen[t].append(dt)
                print(f"round {r + 1}: threads {t}: {tps:.1f} t/s (decode on {dt})", file=sys.stderr, flush=True)
    finally:
        for p in busy:
            p.terminate()
            p.join()
    result = {"machine": f"{os.uname().machine}, {os.cpu_count()} cores", "busy_processes": a.busy,
              "model": str(a.model), "n": a.n, "repetitions": a.r, "rounds": a.rounds, "settings": {}}
    print(f"| threads | decode t/s (median of {a.rounds} rounds) | ratio to -t 1 (per round: median, range) | decode ran on |")
    print("|---|---|---|---|")
    for t in a.threads:
        ratios = [x / y for x, y in zip(rows[t], rows["1"])]
        result["settings"][t] = {"tps": rows[t], "ratio_to_t1": ratios, "decode_threads": chosen[t]}
        print(f"| {t} | {statistics.median(rows[t]):.1f} | {statistics.median(ratios):.2f}x "
              f"({min(ratios):.2f}-{max(ratios):.2f}) | {sorted(set(chosen[t]))} |")
    if a.out:
        a.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

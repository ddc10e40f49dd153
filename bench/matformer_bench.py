#!/usr/bin/env python3
"""MatFormer sub-models at real size: one E4B-shaped file run as several sub-models, against a
standalone file of the E2B sub-model, in one run (docs/matformer.md).

For each round, in an order that rotates from round to round so machine noise falls on all
alike, each entry runs in a fresh process: `altup bench -m WHOLE --submodel NAME` for every
configuration asked for, `altup bench -m STANDALONE` (the sliced file: `altup-tools slice
WHOLE --submodel E2B`), and, when llama-cpp-python is importable (scripts/bootstrap-compare.sh,
run this with .venv-compare/bin/python), llama.cpp on the standalone file, the only way
llama.cpp can run E2B (it has no sub-model selection). Reported per entry: load time, peak RSS,
ppN and tgN tokens/s (medians over the rounds), and for E2B-from-WHOLE against the standalone
file the medians of the per-round ratios of peak RSS and decode speed. Writes OUT (JSON).

    .venv/bin/python bench/gemma3n_shapes.py --out runs/e4b-q8_0.gguf --dtype q8_0 --config e4b
    .venv/bin/python -m altup_tools slice runs/e4b-q8_0.gguf --out runs/e2b-sliced-q8_0.gguf --submodel E2B
    .venv-compare/bin/python bench/matformer_bench.py --whole runs/e4b-q8_0.gguf \\
        --standalone runs/e2b-sliced-q8_0.gguf --rounds 3 --out bench/results/matformer_q8_0.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from compare import run_peer  # noqa: E402

ALTUP = ROOT / "build" / "cli" / "altup"


def run_altup(model: Path, submodel: str, n_prompt: int, n_gen: int, threads: int) -> dict:
    cmd = [str(ALTUP), "bench", "-m", str(model), "-p", str(n_prompt), "-n", str(n_gen), "-r", "1", "-t",
           str(threads), "-o", "json"] + (["--submodel", submodel] if submodel else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"altup bench failed ({' '.join(cmd)}):\n{r.stderr.strip()}")
    j = json.loads(r.stdout)
    return {"load_s": j["load_s"], "peak_rss_mib": j["peak_rss_mib"],
            **{t["test"]: t["tokens_per_s"]["median"] for t in j["tests"]}}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def write_result(path: Path, fields: dict) -> None:
    """The result file, whole or not at all: the command, date and machine, then `fields`."""
    out = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "date": time.strftime("%Y-%m-%d"),
           "machine": cpu_name(), "cpus": os.cpu_count(), **fields}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(tmp, path)


def peer_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
        return True
    except ImportError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--whole", type=Path, required=True, help="the E4B-shaped file")
    ap.add_argument("--standalone", type=Path, required=True, help="the E2B sub-model as a file of its own")
    ap.add_argument("--configs", nargs="+", default=["E4B", "E2B", "E2.49B-block", "E2.98B-block", "E3.49B-block"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--no-peer", action="store_true", help="leave llama.cpp out")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    for f in (a.whole, a.standalone):
        if not f.is_file():
            print(f"matformer_bench: {f} does not exist (see --help for how to make it)", file=sys.stderr)
            return 1
    entries = [(f"altup {c} of {a.whole.name}", "altup", a.whole, c) for c in a.configs]
    entries.append((f"altup {a.standalone.name}", "altup", a.standalone, ""))
    if not a.no_peer and peer_available():
        entries.append((f"llama.cpp {a.standalone.name}", "peer", a.standalone, ""))
    pp, tg = f"pp{a.p}", f"tg{a.n}"
    runs: dict[str, list[dict]] = {e[0]: [] for e in entries}
    total = a.rounds * len(entries)
    for r in range(a.rounds):
        order = entries[r % len(entries):] + entries[:r % len(entries)]
        for k, (label, kind, model, sub) in enumerate(order):
            t0 = time.time()
            res = run_altup(model, sub, a.p, a.n, a.t) if kind == "altup" else run_peer(model, a.p, a.n, a.t)
            runs[label].append(res)
            print(f"[{r * len(entries) + k + 1}/{total}] {label}: {pp} {res.get(pp, 0):.2f} t/s, {tg} "
                  f"{res.get(tg, 0):.2f} t/s, RSS {res.get('peak_rss_mib', 0):.0f} MiB ({time.time() - t0:.0f} s)",
                  file=sys.stderr, flush=True)

    def med(label, key):
        vals = [x[key] for x in runs[label] if key in x]
        return statistics.median(vals) if vals else None

    table = {label: {key: med(label, key) for key in ("load_s", "peak_rss_mib", pp, tg)} for label in runs}
    e2b, alone = f"altup E2B of {a.whole.name}", f"altup {a.standalone.name}"
    ratios = {}
    if e2b in runs:
        ratios = {
            "peak_rss_e2b_from_whole_over_standalone": statistics.median(
                x["peak_rss_mib"] / y["peak_rss_mib"] for x, y in zip(runs[e2b], runs[alone])),
            "decode_e2b_from_whole_over_standalone": statistics.median(
                x[tg] / y[tg] for x, y in zip(runs[e2b], runs[alone])),
            "prefill_e2b_from_whole_over_standalone": statistics.median(
                x[pp] / y[pp] for x, y in zip(runs[e2b], runs[alone])),
        }
    print(f"\n{'entry':<52} {'load s':>7} {'peak RSS MiB':>13} {pp + ' t/s':>10} {tg + ' t/s':>10}")
    for label, row in table.items():
        print(f"{label:<52} {row['load_s'] or 0:7.2f} {row['peak_rss_mib'] or 0:13.0f} {row[pp] or 0:10.2f} "
              f"{row[tg] or 0:10.2f}")
    for k, v in ratios.items():
        print(f"{k}: {v:.3f}")
    write_result(a.out, {"threads": a.t, "rounds": a.rounds, "table": table, "ratios": ratios, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())

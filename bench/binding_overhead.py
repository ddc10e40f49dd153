#!/usr/bin/env python3
"""Per-token overhead of the Python binding (altup_tools.runtime) over the C API.

Generates N greedy tokens from the same prompt three ways, interleaved, R rounds:
  c_api     one altup_generate call with no callback (the C API's own cost, per token);
  generate  Model.generate (a ctypes callback into Python per token);
  stream    Model.stream (the C call in a worker thread, each piece through a queue).
Prints one JSON object: medians of microseconds per token, and the overheads over c_api.

    .venv/bin/python bench/binding_overhead.py [-m MODEL.gguf] [-n 128] [-r 9] [-t THREADS]
"""
import argparse
import ctypes
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "converters"))
from altup_tools.runtime import _CALLBACK, Model  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", default=str(ROOT / "demo" / "kjv-altup-k2.gguf"))
    ap.add_argument("-n", "--tokens", type=int, default=128)
    ap.add_argument("-r", "--rounds", type=int, default=9)
    ap.add_argument("-t", "--threads", type=int, default=1)
    a = ap.parse_args()
    if a.tokens < 1 or a.rounds < 1:
        ap.error("tokens and rounds must be at least 1")
    prompt = "And it came to pass"
    m = Model(a.model, temperature=0, threads=a.threads, context=a.tokens + 64)
    null_cb = ctypes.cast(None, _CALLBACK)

    def c_api():
        m.reset()
        stop = ctypes.c_int()
        m._check(m._lib.altup_generate(m._session, prompt.encode(), a.tokens, null_cb, None, ctypes.byref(stop)))
        return m.position

    def generate():
        m.reset()
        m.generate(prompt, a.tokens)
        return m.position

    def stream():
        m.reset()
        for _ in m.stream(prompt, a.tokens):
            pass
        return m.position

    ways = {"c_api": c_api, "generate": generate, "stream": stream}
    per_token = {k: [] for k in ways}
    for f in ways.values():  # warm-up
        f()
    for r in range(a.rounds):
        order = list(ways.items()) if r % 2 == 0 else list(reversed(ways.items()))
        for name, f in order:
            t0 = time.perf_counter()
            n_after = f()
            dt = time.perf_counter() - t0
            per_token[name].append(1e6 * dt / a.tokens)
            assert n_after > a.tokens  # the prompt and every token were evaluated
    med = {k: statistics.median(v) for k, v in per_token.items()}
    print(json.dumps({"model": a.model, "tokens": a.tokens, "rounds": a.rounds, "threads": a.threads,
                      "us_per_token_median": {k: round(v, 2) for k, v in med.items()},
                      "overhead_us_per_token": {k: round(med[k] - med["c_api"], 2) for k in ("generate", "stream")}},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

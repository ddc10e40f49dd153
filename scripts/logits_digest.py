#!/usr/bin/env python3
"""Digest of the logits every committed model computes, for checking that a refactoring
changed no bit: run it before and after and compare the two outputs (`diff`).

For each model (the demo model and every model fixture under tests/fixtures) it records
SHA-256 digests of
  - every position's logits of a 40-token sequence (`altup eval --tokens`, all logits);
  - the last-token logits of a 24-token prefill (the last-token cut) and of 8 decode steps
    after it, through the C library (converters/altup_tools/runtime.py).
One line per model and path: "<model> <path> <sha256>". Token ids are fixed (i * 7919 mod V).

usage: scripts/logits_digest.py [--altup build/cli/altup] [--lib build/libaltup.so] > digest.txt
"""
import argparse
import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "converters"))
from altup_tools.runtime import Model  # noqa: E402


def models() -> list[pathlib.Path]:
    found = [ROOT / "demo" / "kjv-altup-k2.gguf"]
    found += sorted((ROOT / "tests" / "fixtures").glob("model_*.gguf"))
    found += sorted((ROOT / "tests" / "fixtures").glob("gemma3n_*.gguf"))
    return [p for p in found if p.exists()]


def ids(n: int, vocab: int) -> list[int]:
    return [(i * 7919 + 3) % vocab for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--altup", default=str(ROOT / "build" / "cli" / "altup"))
    ap.add_argument("--lib", default=str(ROOT / "build" / "libaltup.so"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    for path in models():
        name = path.relative_to(ROOT)
        with Model(path, threads=a.threads, library=a.lib) as m:
            vocab = m.info["vocab_size"]
            h = hashlib.sha256()
            m.eval(ids(24, vocab))
            h.update(np.ascontiguousarray(m.logits(), dtype=np.float32).tobytes())
            for t in ids(8, vocab)[::-1]:
                m.eval([t])
                h.update(np.ascontiguousarray(m.logits(), dtype=np.float32).tobytes())
            print(f"{name} prefill+decode {h.hexdigest()}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            tok = pathlib.Path(tmp) / "ids.txt"
            tok.write_text(" ".join(map(str, ids(40, vocab))))
            out = pathlib.Path(tmp) / "logits.npy"
            subprocess.run([a.altup, "eval", "-m", str(path), "--tokens", str(tok), "--logits-out", str(out),
                            "-t", str(a.threads)], check=True, stderr=subprocess.DEVNULL)
            print(f"{name} all-logits {hashlib.sha256(np.load(out).tobytes()).hexdigest()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

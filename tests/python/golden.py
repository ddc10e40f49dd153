"""Helpers the Python tests share: the golden fixtures' layout (tests/fixtures/*_cases.txt and
<prefix><name>.bin, written by the make_*_fixtures.py scripts) and `altup eval` as a function."""
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ALTUP = ROOT / "build" / "cli" / "altup"
FIX = ROOT / "tests" / "fixtures"


def cases(index: str):
    """(name, vocabulary, prompt length, decode steps) per line of a fixtures index."""
    for line in (FIX / index).read_text().splitlines():
        name, vocab, prompt_len, decode_len = line.split()
        yield name, int(vocab), int(prompt_len), int(decode_len)


def golden(prefix: str, name: str, vocab: int, prompt_len: int):
    """The prompt ids and the reference's logits at every prompt position."""
    raw = np.fromfile(FIX / f"{prefix}{name}.bin", dtype=np.uint8)
    prompt = raw[:4 * prompt_len].view(np.int32)
    prefill = raw[4 * prompt_len:4 * prompt_len * (1 + vocab)].view(np.float32).reshape(prompt_len, vocab)
    return prompt, prefill


def eval_logits(tmp_path: Path, model, ids, *extra) -> np.ndarray:
    """altup eval's logits [T, V] for the token ids as given."""
    f = tmp_path / "ids.txt"
    f.write_text(" ".join(map(str, ids)))
    out = tmp_path / "logits.npy"
    r = subprocess.run([str(ALTUP), "eval", "-m", str(model), "--tokens", str(f), "--logits-out", str(out),
                        *map(str, extra)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return np.load(out)

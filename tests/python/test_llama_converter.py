"""Files written by llama.cpp's own converter (convert_hf_to_gguf.py from the llama-cpp-python
sdist, fetched by scripts/fetch-llama-converter.sh, run in .venv-train for torch) load in
altup.cpp and give the same logits as our conversion of the same checkpoint. Only the K = 4
checkpoints: that converter asserts altup_num_inputs == 4. Skipped, not passed, without it.

One difference is by design (docs/gemma3n-architecture.md): llama.cpp pads the per-layer
embedding table with zero rows, we pad with copies of row 0 as transformers maps those ids.
So the prompts here use only ids inside the per-layer table, and one check shows the files
agree exactly up to the first id past it."""
import subprocess
from pathlib import Path

import numpy as np
import pytest

from golden import FIX, ROOT, eval_logits, golden

CONVERTER = ROOT / ".llama-converter" / "convert_hf_to_gguf.py"
TRAIN_PY = ROOT / ".venv-train" / "bin" / "python"


def available() -> bool:
    if not CONVERTER.is_file() or not TRAIN_PY.is_file():
        return False
    return subprocess.run([str(TRAIN_PY), "-c", "import torch"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not available(), reason="llama.cpp's converter not fetched "
                                "(scripts/fetch-llama-converter.sh) or no torch in .venv-train")

# name, vocabulary, rows of the per-layer table (from make_gemma3n_fixtures.py)
CASES = [("k4_multimodal_f32", 298, 280), ("k4_wide_f16", 294, 294)]


@pytest.mark.parametrize("name,vocab,ple_rows", CASES)
def test_llama_cpp_conversion_gives_our_logits(tmp_path, name, vocab, ple_rows):
    theirs = tmp_path / "llama.gguf"
    r = subprocess.run([str(TRAIN_PY), str(CONVERTER), str(FIX / "gemma3n" / name), "--outfile", str(theirs),
                        "--outtype", "f32"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    ours = FIX / f"gemma3n_{name}.gguf"
    prompt, want = golden("gemma3n_", name, vocab, 64)  # transformers

    # The fixture prompt: identical up to the first id past the per-layer table.
    a, b = eval_logits(tmp_path, ours, prompt), eval_logits(tmp_path, theirs, prompt)
    past = np.nonzero(prompt >= ple_rows)[0]
    n = int(past[0]) if len(past) else len(prompt)
    assert n > 0
    tol = 1e-4 * np.abs(want[:n]).max()
    assert np.abs(b[:n] - a[:n]).max() <= tol
    assert np.abs(b[:n] - want[:n]).max() <= tol

    # A prompt inside the table: every position agrees.
    inside = [int(t) % ple_rows for t in prompt]
    a, b = eval_logits(tmp_path, ours, inside), eval_logits(tmp_path, theirs, inside)
    assert np.abs(b - a).max() <= 1e-4 * np.abs(a).max()

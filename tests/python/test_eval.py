"""`altup eval`: the logits of every position as a .npy file NumPy reads, equal (within the
golden tolerance) to the PyTorch reference's for every fixture model, ids as given or as the
sentencepiece library tokenizes the prompt, long inputs in chunks, and clean refusals that
leave no file behind."""
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
from golden import golden as read_golden

ROOT = Path(__file__).resolve().parents[2]
ALTUP = ROOT / "build" / "cli" / "altup"
FIX = ROOT / "tests" / "fixtures"
DEMO = ROOT / "demo" / "kjv-altup-k2.gguf"


def cases():
    for line in (FIX / "model_cases.txt").read_text().splitlines():
        name, vocab, prompt_len, decode_len = line.split()
        yield name, int(vocab), int(prompt_len), int(decode_len)


def golden(name, vocab, prompt_len):
    return read_golden("model_", name, vocab, prompt_len)


def altup(*args):
    return subprocess.run([str(ALTUP), *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("name,vocab,prompt_len,decode_len", list(cases()))
def test_logits_match_the_pytorch_reference(tmp_path, name, vocab, prompt_len, decode_len):
    prompt, want = golden(name, vocab, prompt_len)
    ids = tmp_path / "ids.txt"
    # Spaces, commas and newlines all separate ids.
    ids.write_text(" ".join(map(str, prompt[:10])) + ",\n" + ",".join(map(str, prompt[10:])) + "\n")
    out = tmp_path / "logits.npy"
    r = altup("eval", "-m", FIX / f"model_{name}.gguf", "--tokens", ids, "--logits-out", out, "-t", "2")
    assert r.returncode == 0, r.stderr
    got = np.load(out)
    assert got.dtype == np.float32 and got.shape == (prompt_len, vocab)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert np.array_equal(np.load(tmp_path / "logits.tokens.npy"), prompt)


def test_prompt_is_tokenized_as_sentencepiece_does(tmp_path):
    sp = spm.SentencePieceProcessor(model_file=str(ROOT / "demo" / "tokenizer.model"))
    text = "And God said, Let there be light: and there was light."
    out = tmp_path / "l.npy"
    r = altup("eval", "-m", DEMO, "-p", text, "--logits-out", out, "--tokens-out", tmp_path / "ids.npy")
    assert r.returncode == 0, r.stderr
    ids = np.load(tmp_path / "ids.npy")
    assert ids.tolist() == [sp.bos_id()] + sp.encode(text)
    assert np.load(out).shape == (len(ids), sp.get_piece_size())


def test_long_inputs_run_in_chunks(tmp_path):
    rng = np.random.default_rng(3)
    ids = rng.integers(3, 2048, size=700)
    (tmp_path / "long.txt").write_text(" ".join(map(str, ids)))
    (tmp_path / "short.txt").write_text(" ".join(map(str, ids[:300])))
    for name in ("long", "short"):
        r = altup("eval", "-m", DEMO, "--tokens", tmp_path / f"{name}.txt", "--logits-out", tmp_path / f"{name}.npy")
        assert r.returncode == 0, r.stderr
    long, short = np.load(tmp_path / "long.npy"), np.load(tmp_path / "short.npy")
    assert long.shape == (700, 2048) and np.isfinite(long).all()
    np.testing.assert_allclose(long[:300], short, rtol=1e-4, atol=1e-4 * np.abs(short).max())


@pytest.mark.parametrize("content,expect", [
    ("1 2 x 4", "'x' at byte 4 is not a token id"),
    ("1 2 3.5", "'3.5' at byte 4 is not a token id"),
    ("", "holds no token ids"),
    ("1 2 99999", "token 99999 at position 2 is outside the vocabulary [0, 2048)"),
    ("1 -7", "token -7 at position 1 is outside the vocabulary"),
])
def test_bad_token_files_are_refused_and_leave_nothing(tmp_path, content, expect):
    (tmp_path / "ids.txt").write_text(content)
    r = altup("eval", "-m", DEMO, "--tokens", tmp_path / "ids.txt", "--logits-out", tmp_path / "l.npy")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and expect in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.txt"]


def test_usage_errors(tmp_path):
    assert altup("eval", "-p", "x").returncode == 2                       # no --logits-out
    assert altup("eval", "--logits-out", tmp_path / "l.npy").returncode == 2  # neither -p nor --tokens
    r = altup("eval", "-p", "x", "--tokens", "f", "--logits-out", tmp_path / "l.npy")
    assert r.returncode == 2 and "either -p TEXT or --tokens FILE" in r.stderr
    r = altup("eval", "-m", DEMO, "-p", "x", "--logits-out", DEMO)
    assert r.returncode == 1 and "is the model file itself" in r.stderr

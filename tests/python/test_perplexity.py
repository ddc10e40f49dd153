"""`altup perplexity` against NumPy: the chunking and scoring of llama.cpp's llama-perplexity
(chunks of N tokens, BOS first, the second half scored) and the KL divergence, recomputed
here from `altup eval` logits of each chunk; and the refusals (short text, foreign or
truncated base file), which leave no base file behind."""
import re
import subprocess

import numpy as np
import pytest

from golden import ALTUP, FIX, ROOT, eval_logits

A = FIX / "model_k2_fixed_widened.gguf"  # two random models with the same 320-token vocabulary
B = FIX / "model_k2_alternating_widened.gguf"
CTX = 24


def run(*args):
    return subprocess.run([str(ALTUP), "perplexity", *map(str, args)], capture_output=True, text=True)


def figure(out: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)}\s*=\s*([0-9.eE+-]+)", out, re.M)
    assert m, out
    return float(m.group(1))


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    p = tmp_path_factory.mktemp("ppl") / "text.txt"
    p.write_text("".join(f.read_text(encoding="utf-8") for f in sorted((ROOT / "docs").glob("*.md")))[:6000], encoding="utf-8")
    return p


def chunk_logprobs(tmp_path, model, text, chunks):
    """Per chunk, NumPy's log-probabilities of the scored positions and their next tokens."""
    ids = eval_logits_ids(tmp_path, model, text)
    bos = ids[0]  # the demo tokenizer adds BOS; every chunk starts with it
    out = []
    for c in range(chunks):
        chunk = ids[c * CTX:(c + 1) * CTX].copy()
        chunk[0] = bos
        lp = log_softmax(eval_logits(tmp_path, model, chunk))
        first = CTX // 2
        out.append((lp[first:CTX - 1], chunk[first + 1:CTX]))
    return out


def eval_logits_ids(tmp_path, model, text):
    out = tmp_path / "all.npy"
    r = subprocess.run([str(ALTUP), "eval", "-m", str(model), "-p", text.read_text(encoding="utf-8"),
                        "--logits-out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return np.load(tmp_path / "all.tokens.npy")


def test_perplexity_matches_numpy_scoring(tmp_path, text):
    r = run("-m", A, "-f", text, "-c", CTX, "--chunks", 5, "-t", 2)
    assert r.returncode == 0, r.stderr
    nll = []
    for lp, nxt in chunk_logprobs(tmp_path, A, text, 5):
        nll += list(-lp[np.arange(len(nxt)), nxt])
    nll = np.array(nll)
    want = np.exp(nll.mean())
    assert f"{5 * (CTX - 1 - CTX // 2)} positions scored" in r.stdout
    assert figure(r.stdout, "PPL") == pytest.approx(want, rel=1e-4)
    assert r.stdout.strip().splitlines()[-1].startswith("PPL = ")


def test_kl_divergence_matches_numpy(tmp_path, text):
    base = tmp_path / "a.kl"
    r = run("-m", A, "-f", text, "-c", CTX, "--chunks", 4, "--kl-divergence-base", base)
    assert r.returncode == 0, r.stderr
    r = run("-m", B, "--kl-divergence-base", base, "--kl-divergence")
    assert r.returncode == 0, r.stderr
    kl, same, nll_b, nll_a = [], [], [], []
    for (la, nxt), (lb, _) in zip(chunk_logprobs(tmp_path, A, text, 4), chunk_logprobs(tmp_path, B, text, 4)):
        kl += list((np.exp(la) * (la - lb)).sum(axis=-1))
        same += list(la.argmax(-1) == lb.argmax(-1))
        nll_a += list(-la[np.arange(len(nxt)), nxt])
        nll_b += list(-lb[np.arange(len(nxt)), nxt])
    assert figure(r.stdout, "Mean KLD") == pytest.approx(np.mean(kl), rel=1e-3, abs=1e-6)
    assert figure(r.stdout, "Same top-1") == pytest.approx(100 * np.mean(same), abs=1e-3)
    assert figure(r.stdout, "PPL(base)") == pytest.approx(np.exp(np.mean(nll_a)), rel=1e-4)
    assert figure(r.stdout, "PPL") == pytest.approx(np.exp(np.mean(nll_b)), rel=1e-4)
    # The model against itself: zero divergence, full agreement.
    r = run("-m", A, "--kl-divergence-base", base, "--kl-divergence")
    assert r.returncode == 0, r.stderr
    assert figure(r.stdout, "Mean KLD") == pytest.approx(0, abs=1e-6)
    assert figure(r.stdout, "Same top-1") == 100


def test_refusals_leave_no_file(tmp_path, text):
    short = tmp_path / "short.txt"
    short.write_text("In the beginning")
    out = tmp_path / "x.kl"
    r = run("-m", A, "-f", short, "-c", CTX, "--kl-divergence-base", out)
    assert r.returncode == 1 and "needs at least" in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [short]
    r = run("-m", A, "--kl-divergence")
    assert r.returncode == 2
    # A base file from a model with another vocabulary, a truncated one, and a foreign one.
    base = tmp_path / "a.kl"
    assert run("-m", A, "-f", text, "-c", CTX, "--chunks", 2, "--kl-divergence-base", base).returncode == 0
    demo = ROOT / "demo" / "kjv-altup-k2.gguf"
    r = run("-m", demo, "--kl-divergence-base", base, "--kl-divergence")
    assert r.returncode == 1 and "vocabulary of 320" in r.stderr
    cut = tmp_path / "cut.kl"
    cut.write_bytes(base.read_bytes()[:-100])
    r = run("-m", A, "--kl-divergence-base", cut, "--kl-divergence")
    assert r.returncode == 1 and "truncated" in r.stderr
    r = run("-m", A, "--kl-divergence-base", text, "--kl-divergence")
    assert r.returncode == 1 and "not a file written by" in r.stderr
    hdr = bytearray(base.read_bytes())
    hdr[8:16] = (2**62).to_bytes(8, "little")
    bad = tmp_path / "bad.kl"
    bad.write_bytes(bytes(hdr))
    r = run("-m", A, "--kl-divergence-base", bad, "--kl-divergence")
    assert r.returncode == 1 and "implausible header" in r.stderr

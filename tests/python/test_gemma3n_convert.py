"""The Gemma 3n converter (Hugging Face directory -> GGUF "gemma3n"): the committed checkpoints
(made by tests/fixtures/make_gemma3n_fixtures.py with transformers) convert to exactly the
committed GGUF files; the result run by `altup eval` gives transformers' logits; other output
dtypes stay close; and broken checkpoints give one clear error and leave no file behind."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import gguf
from altup_tools.gemma3n import convert_gemma3n
from golden import FIX, ROOT, eval_logits
from golden import cases as golden_cases
from golden import golden as read_golden


def cases():
    for name, vocab, prompt_len, _ in golden_cases("gemma3n_cases.txt"):
        yield name, vocab, prompt_len


def golden(name, vocab, prompt_len):
    return read_golden("gemma3n_", name, vocab, prompt_len)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "altup_tools", "convert", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT / "converters")


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("name,vocab,prompt_len", list(cases()))
def test_reconversion_is_identical_and_matches_transformers(tmp_path, name, vocab, prompt_len):
    out = tmp_path / "m.gguf"
    r = cli(FIX / "gemma3n" / name, "--out", out, "--dtype", "f32", "--name", name, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == (FIX / f"gemma3n_{name}.gguf").read_bytes()
    if "multimodal" in name:
        assert "skipping 1 vision / audio tensors" in r.stderr
    prompt, want = golden(name, vocab, prompt_len)
    got = eval_logits(tmp_path, out, prompt)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_layout_follows_llama_cpp(tmp_path):
    """Names, shapes and keys as llama.cpp's gguf-py spells them for gemma3n."""
    r = gguf.GGUFReader(FIX / "gemma3n_k4_multimodal_f32.gguf")
    names = {t.name for t in r.tensors}
    arch = gguf.MODEL_ARCH.GEMMA3N
    allowed = {gguf.TENSOR_NAMES[t].format(bid=l) + ".weight" for t in gguf.MODEL_TENSORS[arch] for l in range(6)}
    assert names <= allowed
    assert "output.weight" not in names  # tied
    shapes = {t.name: tuple(int(x) for x in reversed(t.shape)) for t in r.tensors}
    assert shapes["altup_proj.weight"] == (3, 48, 48)
    assert shapes["per_layer_token_embd.weight"] == (298, 6 * 8)  # padded from 280 rows to the vocabulary
    assert shapes["blk.0.altup_predict_coef.weight"] == (16, 4)
    K = gguf.Keys
    fields = r.fields
    for key in (K.LLM.ALTUP_NUM_INPUTS, K.LLM.ALTUP_ACTIVE_IDX, K.LLM.EMBD_LENGTH_PER_LAYER_INP,
                K.LLM.ACTIVATION_SPARSITY_SCALE, K.LLM.FINAL_LOGIT_SOFTCAPPING, K.Attention.SHARED_KV_LAYERS,
                K.Attention.SLIDING_WINDOW_PATTERN, K.Attention.SLIDING_WINDOW, K.Attention.KEY_LENGTH,
                K.Rope.FREQ_BASE, K.Rope.FREQ_BASE_SWA, K.LLM.FEED_FORWARD_LENGTH):
        assert key.format(arch="gemma3n") in fields, key
    ffn = fields["gemma3n.feed_forward_length"]
    assert [int(ffn.parts[i][0]) for i in ffn.data] == [96, 64, 96, 128, 64, 96]
    z = fields["gemma3n.activation_sparsity_scale"]
    zs = [float(z.parts[i][0]) for i in z.data]
    assert zs[0] == pytest.approx(1.6448536, abs=1e-6) and zs[2] == -np.inf
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == 298 and bytes(tokens.parts[tokens.data[-1]]).decode() == "[PAD297]"


# Measured on the k4_wide_f16 case (max |diff| / max |logit|, top-1 agreement over 64
# positions): f16 0.0000 / 1.00 (its weights are f16 already), bf16 0.023 / 1.00,
# q8_0 0.060 / 0.97. A tiny random model has no smoothness to hide rounding in: the bounds
# are loose, and mainly catch a layout or scale mistake, which gives errors near 1.
@pytest.mark.parametrize("dtype,tol", [("f16", 1e-4), ("bf16", 0.08), ("q8_0", 0.12)])
def test_other_dtypes_stay_close(tmp_path, dtype, tol):
    name, vocab, prompt_len = next(c for c in cases() if c[0] == "k4_wide_f16")
    out = convert_gemma3n(FIX / "gemma3n" / name, tmp_path / "m.gguf", dtype=dtype, progress=False)
    prompt, want = golden(name, vocab, prompt_len)
    got = eval_logits(tmp_path, out, prompt)
    err = np.abs(got - want).max() / np.abs(want).max()
    top1 = float((got.argmax(-1) == want.argmax(-1)).mean())
    print(f"{dtype}: max |diff| / max |logit| = {err:.4f}, top-1 agreement {top1:.2f}")
    assert err <= tol
    assert top1 >= (1.0 if dtype == "f16" else 0.85)


def broken_copy(tmp_path, edit_tensors=None, edit_config=None) -> Path:
    src = FIX / "gemma3n" / "k4_multimodal_f32"
    d = tmp_path / "ckpt"
    shutil.copytree(src, d)
    if edit_tensors:
        t = load_file(str(d / "model.safetensors"))
        edit_tensors(t)
        save_file(t, str(d / "model.safetensors"))
    if edit_config:
        c = json.loads((d / "config.json").read_text())
        edit_config(c)
        (d / "config.json").write_text(json.dumps(c))
    return d


P = "model.language_model."


def _drop(t):
    del t[P + "layers.2.laurel.linear_left.weight"]


def _reshape(t):
    t[P + "layers.1.mlp.up_proj.weight"] = np.zeros((7, 48), np.float32)


def _extra(t):
    t[P + "layers.0.mystery.weight"] = np.zeros((3,), np.float32)


def _nan(t):
    t[P + "layers.3.self_attn.q_proj.weight"][2, 5] = np.nan


def _untied(t):
    t[P + "lm_head.weight"] = np.ones_like(t[P + "embed_tokens.weight"])


def _rope_scaling(c):
    c["text_config"]["rope_scaling"] = {"rope_type": "linear", "factor": 2.0}


def _model_type(c):
    c["model_type"] = "llama"


def _ffn_len(c):
    c["text_config"]["intermediate_size"] = [96, 64]


@pytest.mark.parametrize("tensors,config,message", [
    (_drop, None, "missing tensor layers.2.laurel.linear_left.weight [8, 48]"),
    (_reshape, None, "tensor layers.1.mlp.up_proj.weight has shape [7, 48], expected [64, 48]"),
    (_extra, None, "unexpected tensor layers.0.mystery.weight"),
    (_nan, None, "blk.3.attn_q.weight holds nan at (2, 5)"),
    (_untied, None, "lm_head.weight differs from embed_tokens.weight"),
    (None, _rope_scaling, "rope_scaling is set"),
    (None, _model_type, "model_type is 'llama'"),
    (None, _ffn_len, "intermediate_size must be a positive integer or 6 of them"),
])
def test_broken_checkpoints_are_refused_and_leave_nothing(tmp_path, tensors, config, message):
    d = broken_copy(tmp_path, tensors, config)
    out = tmp_path / "out" / "m.gguf"
    out.parent.mkdir()
    r = cli(d, "--out", out, "--no-progress")
    assert r.returncode == 1
    assert message in r.stderr, r.stderr
    assert any(line.startswith("altup-tools convert: error:") for line in r.stderr.splitlines())
    assert not out.exists() and leftovers(out.parent) == []


def test_unreadable_inputs(tmp_path):
    d = broken_copy(tmp_path)
    (d / "config.json").write_text("{not json")
    r = cli(d, "--out", tmp_path / "m.gguf")
    assert r.returncode == 1 and "config.json is not valid JSON" in r.stderr
    d2 = tmp_path / "empty"
    d2.mkdir()
    (d2 / "config.json").write_text(json.dumps({"model_type": "gemma3n_text"}))
    r = cli(d2, "--out", tmp_path / "m.gguf")
    assert r.returncode == 1 and "has no .safetensors files" in r.stderr
    d3 = broken_copy(tmp_path / "x")
    (d3 / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{truncated")
    r = cli(d3, "--out", tmp_path / "m.gguf")
    assert r.returncode == 1 and "header" in r.stderr
    # The output may not be one of the inputs.
    d4 = broken_copy(tmp_path / "y")
    r = cli(d4, "--out", d4 / "model.safetensors")
    assert r.returncode == 1 and "is the input" in r.stderr
    assert (d4 / "model.safetensors").stat().st_size > 1000


@pytest.mark.parametrize("victim", ["config.json", "model.safetensors.index.json", "model-00002-of-00002.safetensors",
                                    "tokenizer.model"])
def test_no_file_the_conversion_reads_is_overwritten(tmp_path, victim):
    import shutil
    d = tmp_path / "ckpt"
    shutil.copytree(FIX / "gemma3n" / "k2_text_bf16_sharded", d)
    before = (d / victim).read_bytes()
    (tmp_path / "link.gguf").symlink_to(d / victim)
    for out in (d / victim, d / ".." / "ckpt" / victim):
        r = cli(d, "--out", out, "--no-progress")
        assert r.returncode == 1 and "is the input" in r.stderr, r.stderr
    r = cli(d, "--out", tmp_path / "link.gguf", "--no-progress")  # a link is never followed
    assert r.returncode == 1 and "not a regular file" in r.stderr
    assert (d / victim).read_bytes() == before
    assert leftovers(d) == []


def test_paths_that_do_not_exist_are_named(tmp_path):
    r = cli(tmp_path / "nonexistent", "--out", tmp_path / "m.gguf")
    assert r.returncode == 1 and "does not exist" in r.stderr and "tokenizer" not in r.stderr
    (tmp_path / "folder").mkdir()
    r = cli(tmp_path / "folder", "--out", tmp_path / "m.gguf")
    assert r.returncode == 1 and "has no config.json" in r.stderr and "tokenizer" not in r.stderr
    r = cli(FIX / "gemma3n" / "k2_text_bf16_sharded", "--out", tmp_path / "no" / "such" / "m.gguf", "--no-progress")
    assert r.returncode == 1 and "does not exist" in r.stderr
    assert not (tmp_path / "no").exists()  # no folder made on the way

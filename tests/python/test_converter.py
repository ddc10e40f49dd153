"""The converter: a checkpoint round-trips through GGUF (read back with llama.cpp's gguf
package), and every kind of bad input gives one clear error and leaves no file behind."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import gguf
from altup_tools.config import AltUpConfig
from altup_tools.convert import ConvertError, convert, tensor_map

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "demo" / "tokenizer.model"


def tiny_config(**kw) -> AltUpConfig:
    base = dict(vocab_size=2048, d=16, n_layers=2, n_heads=2, n_kv_heads=1, head_dim=8, ffn_dim=24,
                context_length=32, K=2)
    base.update(kw)
    return AltUpConfig(**base)


def tensors_for(c: AltUpConfig, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    t = {name: rng.standard_normal(shape).astype(np.float32) for name, (_, shape) in tensor_map(c).items()}
    t["predict"] = rng.standard_normal((c.n_layers, c.K, c.K)).astype(np.float32)
    t["correct"] = rng.standard_normal((c.n_layers, c.K)).astype(np.float32)
    return t


def write_checkpoint(path: Path, c: AltUpConfig, tensors: dict) -> Path:
    save_file(tensors, str(path), metadata={"altup_config": json.dumps(c.to_dict())})
    return path


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_round_trip(tmp_path, dtype):
    c = tiny_config()
    t = tensors_for(c)
    out = convert(write_checkpoint(tmp_path / "ckpt.safetensors", c, t), TOKENIZER, tmp_path / "m.gguf", dtype,
                  progress=False)
    r = gguf.GGUFReader(out)
    fields = {name: f for name, f in r.fields.items()}
    assert bytes(fields["general.architecture"].parts[-1]).decode() == "altup"
    assert int(fields["altup.altup.num_inputs"].parts[-1][0]) == 2
    assert int(fields["altup.block_count"].parts[-1][0]) == 2
    assert len(fields["tokenizer.ggml.tokens"].data) == 2048
    got = {tt.name: tt for tt in r.tensors}
    for src, (dst, shape) in tensor_map(c).items():
        data = gguf.quants.dequantize(got[dst].data, got[dst].tensor_type).reshape(shape)
        want = t[src]
        if dtype == "f16" and want.ndim == 2:
            want = want.astype(np.float16).astype(np.float32)
        elif dtype == "bf16" and want.ndim == 2:
            want = gguf.quants.dequantize(gguf.quants.quantize(want, gguf.GGMLQuantizationType.BF16),
                                          gguf.GGMLQuantizationType.BF16)
        np.testing.assert_array_equal(data, want, err_msg=dst)
    for l in range(c.n_layers):
        np.testing.assert_array_equal(np.asarray(got[f"blk.{l}.altup_predict_coef.weight"].data).reshape(2, 2),
                                      t["predict"][l])
        np.testing.assert_array_equal(np.asarray(got[f"blk.{l}.altup_correct_coef.weight"].data), t["correct"][l])
    assert leftovers(tmp_path) == []


def check_fails(tmp_path, expect: str, **kw):
    out = tmp_path / "out.gguf"
    with pytest.raises(ConvertError) as e:
        convert(out=out, progress=False, **kw)
    assert expect in str(e.value)
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_missing_tensor(tmp_path):
    c = tiny_config()
    t = tensors_for(c)
    del t["layers.1.ffn.up.weight"]
    check_fails(tmp_path, "missing tensor layers.1.ffn.up.weight [24, 16]",
                checkpoint=write_checkpoint(tmp_path / "c.safetensors", c, t), tokenizer=TOKENIZER)


def test_wrong_shape(tmp_path):
    c = tiny_config()
    t = tensors_for(c)
    t["layers.0.attn.q.weight"] = np.zeros((16, 15), np.float32)
    check_fails(tmp_path, "tensor layers.0.attn.q.weight has shape [16, 15], expected [16, 16]",
                checkpoint=write_checkpoint(tmp_path / "c.safetensors", c, t), tokenizer=TOKENIZER)


def test_unknown_dtype(tmp_path):
    c = tiny_config()
    check_fails(tmp_path, "unknown output dtype 'q9_9'", checkpoint=write_checkpoint(tmp_path / "c.safetensors", c,
                tensors_for(c)), tokenizer=TOKENIZER, dtype="q9_9")


def test_missing_tokenizer(tmp_path):
    c = tiny_config()
    ckpt = write_checkpoint(tmp_path / "c.safetensors", c, tensors_for(c))
    check_fails(tmp_path, "a tokenizer model is required", checkpoint=ckpt, tokenizer=None)
    check_fails(tmp_path, "tokenizer model /nonexistent/tok.model does not exist", checkpoint=ckpt,
                tokenizer=Path("/nonexistent/tok.model"))


def test_tokenizer_vocab_mismatch(tmp_path):
    c = tiny_config(vocab_size=1000)
    check_fails(tmp_path, "has 2048 tokens, the model 1000",
                checkpoint=write_checkpoint(tmp_path / "c.safetensors", c, tensors_for(c)), tokenizer=TOKENIZER)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    check_fails(tmp_path, "cannot read checkpoint", checkpoint=junk, tokenizer=TOKENIZER)
    plain = tmp_path / "plain.safetensors"
    save_file({"x": np.zeros(2, np.float32)}, str(plain))
    check_fails(tmp_path, "has no 'altup_config' metadata", checkpoint=plain, tokenizer=TOKENIZER)


def test_cli_prints_one_error_line_and_exits_1(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "converters")}
    r = subprocess.run([sys.executable, "-m", "altup_tools", "convert", str(tmp_path / "none.safetensors"),
                        "--tokenizer", str(TOKENIZER), "--out", str(tmp_path / "x.gguf")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"altup-tools convert: error: checkpoint {tmp_path / 'none.safetensors'} does not exist"]
    assert not (tmp_path / "x.gguf").exists()


def test_llama_export_permutes_q_and_k_and_drops_altup_coefficients(tmp_path):
    c = tiny_config(K=1)
    t = tensors_for(c)
    t["predict"][:] = 1.0
    t["correct"][:] = 1.0
    out = convert(write_checkpoint(tmp_path / "c.safetensors", c, t), TOKENIZER, tmp_path / "l.gguf", "f32",
                  progress=False, arch="llama")
    r = gguf.GGUFReader(out)
    assert bytes(r.fields["general.architecture"].parts[-1]).decode() == "llama"
    assert int(r.fields["llama.rope.dimension_count"].parts[-1][0]) == 8
    got = {tt.name: np.asarray(tt.data) for tt in r.tensors}
    assert not any("altup" in name for name in got)
    q = t["layers.0.attn.q.weight"]  # [2 heads x 8, 16]: rows (i, i + 4) of a head become (2i, 2i + 1)
    pq = got["blk.0.attn_q.weight"].reshape(q.shape)
    for h in range(2):
        for i in range(4):
            np.testing.assert_array_equal(pq[h * 8 + 2 * i], q[h * 8 + i])
            np.testing.assert_array_equal(pq[h * 8 + 2 * i + 1], q[h * 8 + i + 4])
    np.testing.assert_array_equal(got["blk.0.attn_v.weight"].reshape(8, 16), t["layers.0.attn.v.weight"])


def test_llama_export_refuses_altup_models(tmp_path):
    c = tiny_config(K=2)
    check_fails(tmp_path, "cannot write this model as 'llama': K = 2",
                checkpoint=write_checkpoint(tmp_path / "c.safetensors", c, tensors_for(c)), tokenizer=TOKENIZER,
                arch="llama")


def run_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "converters")}
    return subprocess.run([sys.executable, "-m", "altup_tools", "convert", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_out_never_replaces_an_input(tmp_path):
    c = tiny_config()
    ckpt = write_checkpoint(tmp_path / "m.safetensors", c, tensors_for(c))
    tok = tmp_path / "tok.model"
    tok.write_bytes(TOKENIZER.read_bytes())
    before = {p: p.read_bytes() for p in (ckpt, tok)}
    for target in (ckpt, tok):
        r = run_cli(ckpt, "--tokenizer", tok, "--out", target)
        assert r.returncode == 1
        assert r.stderr.strip().splitlines() == [
            f"altup-tools convert: error: --out {target} is the input {target}; choose another output path"]
    # Through another name (a hard link) too.
    alias = tmp_path / "alias.safetensors"
    os.link(ckpt, alias)
    r = run_cli(ckpt, "--tokenizer", tok, "--out", alias)
    assert r.returncode == 1 and "is the input" in r.stderr
    assert {p: p.read_bytes() for p in (ckpt, tok)} == before
    assert leftovers(tmp_path) == []


def test_out_refuses_fifos_devices_directories_and_links(tmp_path):
    c = tiny_config()
    ckpt = write_checkpoint(tmp_path / "m.safetensors", c, tensors_for(c))
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.gguf"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link.symlink_to(victim)
    for target in (fifo, Path("/dev/null"), tmp_path, link):
        r = run_cli(ckpt, "--tokenizer", TOKENIZER, "--out", target)
        assert r.returncode == 1, target
        assert "exists and is not a regular file" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert fifo.exists() and not fifo.is_file()
    assert victim.read_text() == "keep"
    assert leftovers(tmp_path) == []


def test_inputs_that_are_directories_or_fifos(tmp_path):
    c = tiny_config()
    ckpt = write_checkpoint(tmp_path / "m.safetensors", c, tensors_for(c))
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "x.gguf"
    r = run_cli(tmp_path, "--tokenizer", TOKENIZER, "--out", out)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"altup-tools convert: error: checkpoint {tmp_path} is a directory, not a file")
    r = run_cli(fifo, "--tokenizer", TOKENIZER, "--out", out)  # would block forever reading it
    assert "is not a regular file (a FIFO, device or socket)" in r.stderr
    r = run_cli(ckpt, "--tokenizer", fifo, "--out", out)
    assert "tokenizer model" in r.stderr and "is not a regular file" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("key,value,expect", [
    ("K", "2", "K must be an integer, got '2'"),
    ("d", None, "d must be an integer, got None"),
    ("n_kv_heads", 0, "n_kv_heads must be at least 1, got 0"),
    ("sliding_window", -4, "sliding_window must be 0 (off) or positive, got -4"),
    ("alternating", 1, "alternating must be true or false, got 1"),
    ("rms_eps", -1.0, "rms_eps must be a positive finite number, got -1.0"),
    ("rope_theta", 0, "rope_theta must be a positive finite number, got 0"),
    ("embedding", 3, "embedding must be a string, got 3"),
    ("n_layers", True, "n_layers must be an integer, got True"),
    ("K", 9, "K must be 1..8, got 9"),
])
def test_bad_configs_are_one_line_errors(tmp_path, key, value, expect):
    c = tiny_config()
    cfg = c.to_dict()
    cfg[key] = value
    ckpt = tmp_path / "m.safetensors"
    save_file(tensors_for(c), str(ckpt), metadata={"altup_config": json.dumps(cfg)})
    r = run_cli(ckpt, "--tokenizer", TOKENIZER, "--out", tmp_path / "x.gguf")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0] == f"altup-tools convert: error: {ckpt}: invalid config: {expect}"
    assert not (tmp_path / "x.gguf").exists()


def test_config_that_is_not_an_object(tmp_path):
    c = tiny_config()
    ckpt = tmp_path / "m.safetensors"
    save_file(tensors_for(c), str(ckpt), metadata={"altup_config": "[1, 2]"})
    r = run_cli(ckpt, "--tokenizer", TOKENIZER, "--out", tmp_path / "x.gguf")
    assert r.returncode == 1
    assert "invalid config: the config must be a JSON object, got list" in r.stderr


def quant_config(**kw) -> AltUpConfig:
    # Rows of 32: every matrix can be quantized (attn_k / attn_v rows are d = 32 long).
    return tiny_config(d=32, n_heads=4, n_kv_heads=2, head_dim=8, ffn_dim=64, **kw)


@pytest.mark.parametrize("dtype", ["q8_0", "q4_0"])
@pytest.mark.parametrize("tied", [False, True])
def test_quantized_files_hold_the_gguf_quantizers_bytes(tmp_path, dtype, tied):
    c = quant_config(embedding="recycled", tie_embeddings=True) if tied else quant_config()
    t = tensors_for(c)
    out = convert(write_checkpoint(tmp_path / "ckpt.safetensors", c, t), TOKENIZER, tmp_path / "m.gguf", dtype,
                  progress=False)
    r = gguf.GGUFReader(out)
    assert int(r.fields["general.file_type"].parts[-1][0]) == {"q8_0": 7, "q4_0": 2}[dtype]
    got = {tt.name: tt for tt in r.tensors}
    Q = gguf.GGMLQuantizationType
    for src, (dst, shape) in tensor_map(c).items():
        tt = got[dst]
        if len(shape) == 1:
            assert tt.tensor_type == Q.F32, dst
            continue
        head = dst == "output.weight" or (tied and dst == "token_embd.weight")
        want_type = Q.Q8_0 if head or dtype == "q8_0" else Q.Q4_0
        assert tt.tensor_type == want_type, dst
        # Bit-identical to the gguf package's own quantizer.
        want = gguf.quants.quantize(np.ascontiguousarray(t[src], np.float32), want_type)
        np.testing.assert_array_equal(np.asarray(tt.data).reshape(want.shape), want, err_msg=dst)
    for l in range(c.n_layers):
        assert got[f"blk.{l}.altup_predict_coef.weight"].tensor_type == Q.F32


def test_rows_that_are_not_whole_blocks_stay_f16(tmp_path):
    c = tiny_config()  # d = 16: only the widened embedding [V, K·d = 32] has whole blocks
    out = convert(write_checkpoint(tmp_path / "ckpt.safetensors", c, tensors_for(c)), TOKENIZER,
                  tmp_path / "m.gguf", "q4_0", progress=False)
    Q = gguf.GGMLQuantizationType
    for tt in gguf.GGUFReader(out).tensors:
        row = int(tt.shape[0])  # GGUF order: the innermost length first
        if len(tt.shape) == 1 or tt.name.endswith("_coef.weight"):
            assert tt.tensor_type == Q.F32, tt.name
        elif row % 32:
            assert tt.tensor_type == Q.F16, tt.name
        else:
            assert tt.name == "token_embd.weight" and tt.tensor_type == Q.Q4_0


def test_a_nan_weight_is_refused_naming_the_tensor(tmp_path):
    c = quant_config()
    t = tensors_for(c)
    t["layers.1.ffn.up.weight"][3, 5] = np.nan
    check_fails(tmp_path, "blk.1.ffn_up.weight holds nan at (3, 5)",
                checkpoint=write_checkpoint(tmp_path / "ckpt.safetensors", c, t), tokenizer=TOKENIZER, dtype="q8_0")


def eval_logits(tmp_path, model, ids, name):
    r = subprocess.run([str(ROOT / "build" / "cli" / "altup"), "eval", "-m", str(model), "--tokens", str(ids),
                        "--logits-out", str(tmp_path / f"{name}.npy")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return np.load(tmp_path / f"{name}.npy")


@pytest.mark.parametrize("dtype", ["q8_0", "q4_0"])
def test_quantized_models_run_as_their_dequantized_weights_would(tmp_path, dtype):
    """The runtime on a quantized file against the runtime on an f32 file holding the same
    weights dequantized (by the gguf package): what remains is the 8-bit quantization of the
    activations inside the quantized GEMV, max |diff| <= 3% of max |logit| over every position
    of a 40-token input. Also reported: the distance to the unquantized f32 model."""
    from altup_tools.convert import matrix_dtype

    c = quant_config()
    t = tensors_for(c, seed=5)
    for k in t:  # weights of a trained model's scale, so activations stay in range
        if t[k].ndim == 2:
            t[k] = t[k] / np.sqrt(t[k].shape[1])
    names = tensor_map(c)
    deq = dict(t)
    for src, (dst, shape) in names.items():
        q = matrix_dtype(dst, shape, dtype, c.tie_embeddings) if len(shape) == 2 else "f32"
        if q in ("q8_0", "q4_0"):
            qt = gguf.GGMLQuantizationType[q.upper()]
            deq[src] = gguf.quants.dequantize(gguf.quants.quantize(t[src].astype(np.float32), qt), qt).reshape(shape)
    ids = tmp_path / "ids.txt"
    ids.write_text(" ".join(str(i) for i in np.random.default_rng(1).integers(3, 2048, 40)))
    quant = eval_logits(tmp_path, convert(write_checkpoint(tmp_path / "q.safetensors", c, t), TOKENIZER,
                                          tmp_path / "q.gguf", dtype, progress=False), ids, "q")
    same = eval_logits(tmp_path, convert(write_checkpoint(tmp_path / "d.safetensors", c, deq), TOKENIZER,
                                         tmp_path / "d.gguf", "f32", progress=False), ids, "d")
    exact = eval_logits(tmp_path, convert(write_checkpoint(tmp_path / "f.safetensors", c, t), TOKENIZER,
                                          tmp_path / "f.gguf", "f32", progress=False), ids, "f")
    # Prefill (40 tokens): the int8 tiles (8-bit activations, as decode), within the decode
    # bound; tables without the AVX2 panels, with oneDNN, decode rows exactly (then rounding).
    err = np.abs(quant - same).max() / np.abs(same).max()
    far = np.abs(quant - exact).max() / np.abs(exact).max()
    assert err <= 0.03, err
    # Decode, one token at a time (the quantized GEMV, 8-bit activations), through the binding.
    from altup_tools.runtime import Model

    tokens = [int(i) for i in ids.read_text().split()]
    steps = {}
    for name in ("q", "d"):
        with Model(tmp_path / f"{name}.gguf", threads=1, context=len(tokens)) as m:
            steps[name] = np.stack([m.eval([tok]) for tok in tokens])
    step_err = np.abs(steps["q"] - steps["d"]).max() / np.abs(steps["d"]).max()
    print(f"{dtype}: prefill vs dequantized {err:.2e}, decode vs dequantized {step_err:.4f}, "
          f"vs unquantized weights {far:.4f}")
    assert step_err <= 0.03, step_err
    assert (steps["q"].argmax(1) == steps["d"].argmax(1)).mean() >= 0.9

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

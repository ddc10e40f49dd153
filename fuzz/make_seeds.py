#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (fuzz/corpus/<target>/), small on purpose: libFuzzer
mutates them byte by byte, and small inputs run fast. The GGUF files are written by llama.cpp's
gguf package, not by this project's code.

    .venv/bin/python fuzz/make_seeds.py
"""
from pathlib import Path

import numpy as np
import gguf

HERE = Path(__file__).resolve().parent


def tokenizer_kv(w, n_tokens=16):
    pieces = ["<unk>", "<s>", "</s>", "<0x0A>", "<0x41>", "▁", "a", "b", "▁a", "ab", "▁ab", "c", "▁c", "é", "<mask>", "d"]
    pieces = pieces[:n_tokens]
    types = [2, 3, 3, 6, 6] + [1] * (len(pieces) - 5)
    types[14 if len(pieces) > 14 else -1] = 4  # one user-defined token
    w.add_tokenizer_model("llama")
    w.add_token_list(pieces)
    w.add_token_scores([float(-i) for i in range(len(pieces))])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    return len(pieces)


def tiny_altup(path, K=2, layers=1, d=8, heads=2, kv=1, hd=4, ffn=8, dtype=np.float32):
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(str(path), arch="altup")
    V = 16
    a = "altup"
    w.add_uint32(f"{a}.context_length", 16)
    w.add_uint32(f"{a}.embedding_length", d)
    w.add_uint32(f"{a}.block_count", layers)
    w.add_uint32(f"{a}.feed_forward_length", ffn)
    w.add_uint32(f"{a}.attention.head_count", heads)
    w.add_uint32(f"{a}.attention.head_count_kv", kv)
    w.add_uint32(f"{a}.attention.key_length", hd)
    w.add_uint32(f"{a}.attention.value_length", hd)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_float32(f"{a}.rope.freq_base", 10000.0)
    w.add_uint32(f"{a}.vocab_size", V)
    w.add_uint32(f"{a}.attention.sliding_window", 0)
    w.add_uint32(f"{a}.altup.num_inputs", K)
    w.add_bool(f"{a}.altup.alternating", True)
    w.add_string(f"{a}.altup.embedding", "widened")
    w.add_string(f"{a}.altup.output", "sum")
    w.add_string(f"{a}.ffn_activation", "swiglu")
    w.add_bool(f"{a}.tie_word_embeddings", False)
    tokenizer_kv(w, V)

    def t(name, *shape, dt=dtype):
        w.add_tensor(name, rng.standard_normal(shape).astype(dt))

    t("token_embd.weight", V, K * d)
    t("output_norm.weight", d, dt=np.float32)
    t("output.weight", V, d)
    for l in range(layers):
        t(f"blk.{l}.attn_norm.weight", d, dt=np.float32)
        t(f"blk.{l}.attn_q.weight", heads * hd, d)
        t(f"blk.{l}.attn_k.weight", kv * hd, d)
        t(f"blk.{l}.attn_v.weight", kv * hd, d)
        t(f"blk.{l}.attn_output.weight", d, heads * hd)
        t(f"blk.{l}.ffn_norm.weight", d, dt=np.float32)
        t(f"blk.{l}.ffn_gate.weight", ffn, d)
        t(f"blk.{l}.ffn_up.weight", ffn, d)
        t(f"blk.{l}.ffn_down.weight", d, ffn)
        t(f"blk.{l}.altup_predict_coef.weight", K, K, dt=np.float32)
        t(f"blk.{l}.altup_correct_coef.weight", K, dt=np.float32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def metadata_only(path):
    w = gguf.GGUFWriter(str(path), arch="test")
    w.add_uint8("u8", 7)
    w.add_int16("i16", -3)
    w.add_float64("f64", 0.5)
    w.add_string("s", "héllo")
    w.add_array("arr", [1, 2, 3])
    w.add_array("nested", [[1, 2], [3]])
    w.add_tensor("x", np.arange(6, dtype=np.float16).reshape(2, 3))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    for target in ("gguf", "model", "tokenizer", "options"):
        (HERE / "corpus" / target).mkdir(parents=True, exist_ok=True)
    tiny_altup(HERE / "corpus" / "model" / "altup_k2.gguf")
    tiny_altup(HERE / "corpus" / "model" / "altup_k1_f16.gguf", K=1, layers=2, dtype=np.float16)
    tiny_altup(HERE / "corpus" / "gguf" / "altup_k2.gguf")
    metadata_only(HERE / "corpus" / "gguf" / "metadata.gguf")
    texts = ["And it came to pass", "  two  spaces\nnewline", "é ü 🙂 \x01", "ab▁c <mask> d", "", "\xff\xfe"]
    for k, t in enumerate(texts):
        (HERE / "corpus" / "tokenizer" / f"text{k}").write_bytes(t.encode("utf-8", "surrogateescape"))
    args = ["run\0-m\0x.gguf\0-n\0005\0--temp\0000.5", "profile\0--format\0json\0--overhead",
            "bench\0-p=512\0-r\0003", "info\0--no-tensors\0file.gguf", "run\0--top-p\0001e-3\0--seed\0-1"]
    for k, a in enumerate(args):
        (HERE / "corpus" / "options" / f"args{k}").write_bytes(a.encode())
    print("seeds written under", HERE / "corpus")


if __name__ == "__main__":
    main()

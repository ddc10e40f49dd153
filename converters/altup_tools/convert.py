"""Checkpoint (+ SentencePiece tokenizer) -> GGUF, architecture "altup" (or, for a dense
K = 1 model, llama.cpp's "llama", which llama.cpp itself can load).

A checkpoint is a .safetensors file whose metadata holds the model's config as JSON under
"altup_config" (what `altup-tools train` writes); reading it needs numpy and safetensors only,
not torch. Every hyper-parameter goes into the GGUF metadata under "altup.", the tokenizer
under llama.cpp's keys, tensors under llama.cpp's names ("blk.N.attn_q.weight", ...).
The file is written to a temporary name beside the output and renamed only when complete.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np

from .config import AltUpConfig
from .gguf_out import atomic_output
from .tokenizer import read_vocab

ARCH = "altup"
STAGFORMER = "stagformer"
ARCHS = ("altup", "llama")  # what --arch chooses; a StagFormer checkpoint is always "stagformer"
DTYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")
# general.file_type, as llama.cpp numbers it (LlamaFileType in the gguf package).
FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "bf16": 32}


class ConvertError(Exception):
    """A problem with the inputs, worded for the user."""


def tensor_map(c: AltUpConfig) -> dict[str, tuple[str, tuple[int, ...]]]:
    """checkpoint name -> (GGUF name, shape) for every tensor the model has."""
    m = {"embed.weight": ("token_embd.weight", (c.vocab_size, c.embed_width)),
         "norm.weight": ("output_norm.weight", (c.out_width,))}
    if not c.tie_embeddings:
        m["unembed.weight"] = ("output.weight", (c.vocab_size, c.out_width))
    q, kv = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
    for k in range((c.stacks - 1) * c.stack_depth if c.stacks else 0):  # StagFormer's cross-attention
        p, b = f"cross.{k}.", f"cross.{k}."
        m.update({
            p + "norm.weight": (b + "attn_norm.weight", (c.d,)),
            p + "attn.q.weight": (b + "attn_q.weight", (q, c.d)),
            p + "attn.k.weight": (b + "attn_k.weight", (kv, c.d)),
            p + "attn.v.weight": (b + "attn_v.weight", (kv, c.d)),
            p + "attn.o.weight": (b + "attn_output.weight", (c.d, q)),
        })
    for s in range(c.stacks - 1 if c.stacks else 0):
        m[f"mem_norm.{s}.weight"] = (f"stack.{s}.mem_norm.weight", (c.d,))
    for l in range(c.stored_layers):
        p, b = f"layers.{l}.", f"blk.{l}."
        if c.moe[l]:  # the router and the stacked experts, under llama.cpp's names
            m.update({p + "ffn.router.weight": (b + "ffn_gate_inp.weight", (c.experts, c.d)),
                      p + "ffn.gate": (b + "ffn_gate_exps.weight", (c.experts, c.ffn_dim, c.d)),
                      p + "ffn.up": (b + "ffn_up_exps.weight", (c.experts, c.ffn_dim, c.d)),
                      p + "ffn.down": (b + "ffn_down_exps.weight", (c.experts, c.d, c.ffn_dim))})
        m.update({
            p + "attn_norm.weight": (b + "attn_norm.weight", (c.d,)),
            p + "attn.q.weight": (b + "attn_q.weight", (q, c.d)),
            p + "attn.k.weight": (b + "attn_k.weight", (kv, c.d)),
            p + "attn.v.weight": (b + "attn_v.weight", (kv, c.d)),
            p + "attn.o.weight": (b + "attn_output.weight", (c.d, q)),
            p + "ffn_norm.weight": (b + "ffn_norm.weight", (c.d,)),
        })
        if not c.moe[l]:
            m.update({p + "ffn.gate.weight": (b + "ffn_gate.weight", (c.ffn_dim, c.d)),
                      p + "ffn.up.weight": (b + "ffn_up.weight", (c.ffn_dim, c.d)),
                      p + "ffn.down.weight": (b + "ffn_down.weight", (c.d, c.ffn_dim))})
    return m


def check_input_file(path: Path, what: str) -> None:
    """A readable regular file, or a ConvertError that says what it is instead (a FIFO would
    make the readers wait forever; a directory is a common slip)."""
    p = Path(path)
    if not p.exists():
        raise ConvertError(f"{what} {p} does not exist")
    if p.is_dir():
        raise ConvertError(f"{what} {p} is a directory, not a file")
    if not p.is_file():
        raise ConvertError(f"{what} {p} is not a regular file (a FIFO, device or socket)")


def check_output_path(out: Path, inputs: list[Path]) -> None:
    """`out` may be new or an existing regular file, but never one of the inputs (the same file,
    whatever links or relative paths lead to it): the converter must not destroy what it reads.
    Its folder must exist: a mistyped path is an error, not a new folder tree."""
    parent = Path(out).parent
    if not parent.is_dir():
        raise ConvertError(f"--out {out}: the folder {parent} does not exist")
    if os.path.lexists(out):
        st = os.lstat(out)
        if not stat.S_ISREG(st.st_mode):
            raise ConvertError(f"--out {out} exists and is not a regular file (a directory, link, FIFO or device); "
                               "not replacing it")
        for src in inputs:
            if src is not None and Path(src).exists() and os.path.samefile(out, src):
                raise ConvertError(f"--out {out} is the input {src}; choose another output path")


def load_checkpoint(path: Path) -> tuple[AltUpConfig, dict[str, np.ndarray]]:
    from safetensors import safe_open

    check_input_file(path, "checkpoint")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            if "altup_config" not in meta:
                raise ConvertError(f"{path} has no 'altup_config' metadata: not an altup-tools checkpoint")
            config_json = meta["altup_config"]
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except ConvertError:
        raise
    except Exception as e:  # safetensors reports malformed files with its own exception types
        raise ConvertError(f"cannot read checkpoint {path}: {e}") from e
    try:
        config = AltUpConfig.from_dict(json.loads(config_json))  # checks types and ranges
    except (ValueError, TypeError) as e:
        raise ConvertError(f"{path}: invalid config: {e}") from e
    return config, tensors


def check_tensors(c: AltUpConfig, tensors: dict[str, np.ndarray]) -> None:
    """Every expected tensor present with its shape; all problems reported at once."""
    problems = []
    expected = tensor_map(c)
    expected_extra = {} if c.stacks else {"predict": (c.n_layers, c.K, c.K), "correct": (c.n_layers, c.K)}
    if c.seq_stride > 1:
        expected_extra["seq"] = (c.n_layers, 3)  # Sequence-AltUp's (α, β, γ) per layer
    for name, shape in [(k, v[1]) for k, v in expected.items()] + list(expected_extra.items()):
        if name not in tensors:
            problems.append(f"missing tensor {name} {list(shape)}")
        elif tuple(tensors[name].shape) != shape:
            problems.append(f"tensor {name} has shape {list(tensors[name].shape)}, expected {list(shape)}")
    unknown = set(tensors) - set(expected) - set(expected_extra)
    for name in sorted(unknown):
        problems.append(f"unexpected tensor {name}")
    if problems:
        raise ConvertError("the checkpoint does not match its config:\n  " + "\n  ".join(problems))


def matrix_dtype(name: str, shape: tuple, dtype: str, tied: bool) -> str:
    """What a 2-D tensor is stored as, for the requested --dtype. Following llama.cpp's practice:
    quantized files keep the output head (the embedding table when it is tied) at 8 bits even
    for q4_0, since the logits are most sensitive to it; a matrix whose rows are not whole
    blocks of 32 cannot be quantized and is stored as f16. Norms and AltUp's coefficients are
    not matrices and always stay f32."""
    if dtype not in ("q8_0", "q4_0"):
        return dtype
    if shape[-1] % 32:
        return "f16"
    head = name == "output.weight" or (tied and name == "token_embd.weight")
    return "q8_0" if head else dtype


def to_dtype(a: np.ndarray, dtype: str, name: str = "tensor"):
    """(array, raw ggml type or None) in the requested dtype, quantized by the gguf package's
    own quantizer (bit-identical to llama.cpp's reference)."""
    import gguf

    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ConvertError(f"{name} holds {a[tuple(bad)]} at {tuple(int(i) for i in bad)}: "
                           "a weight must be a finite number")
    if dtype == "f32":
        return a, None
    if dtype == "f16":
        return a.astype(np.float16), None
    qtype = {"bf16": gguf.GGMLQuantizationType.BF16, "q8_0": gguf.GGMLQuantizationType.Q8_0,
             "q4_0": gguf.GGMLQuantizationType.Q4_0}[dtype]
    return gguf.quants.quantize(a, qtype), qtype


def permute_for_llama(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorders q / k rows within each head from rotate-half pairs (i, i + hd/2) to the
    adjacent pairs (2i, 2i + 1) that llama.cpp's "llama" RoPE rotates; as its converter does."""
    hd = w.shape[0] // n_heads
    return w.reshape(n_heads, 2, hd // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def check_llama_compatible(c: AltUpConfig, tensors: dict[str, np.ndarray]) -> None:
    problems = []
    if c.K != 1:
        problems.append(f"K = {c.K} (a llama file is dense: K = 1)")
    if c.ffn_act != "swiglu":
        problems.append(f"ffn_act {c.ffn_act!r} (llama uses swiglu)")
    if c.sliding_window:
        problems.append("a sliding window (llama has none)")
    if c.seq_stride > 1:
        problems.append("Sequence-AltUp layers (llama runs every layer on every token)")
    if c.experts and not all(c.moe):
        problems.append("experts in some layers only (llama's mixtures of experts are in every layer)")
    if c.K == 1 and (not np.all(tensors["predict"] == 1) or not np.all(tensors["correct"] == 1)):
        problems.append("AltUp coefficients other than predict = [[1]], correct = [1] (a llama file cannot hold them)")
    if problems:
        raise ConvertError("cannot write this model as 'llama': " + "; ".join(problems))


def add_backbone_metadata(w, c: AltUpConfig, name: str) -> None:
    """The keys every Llama-style backbone has, under the writer's architecture prefix."""
    w.add_name(name)
    w.add_context_length(c.context_length)
    w.add_embedding_length(c.d)
    w.add_block_count(c.stored_layers)  # the layers with weights of their own (a StagFormer may share)
    w.add_feed_forward_length(c.ffn_dim)
    w.add_head_count(c.n_heads)
    w.add_head_count_kv(c.n_kv_heads)
    w.add_key_length(c.head_dim)
    w.add_value_length(c.head_dim)
    w.add_layer_norm_rms_eps(c.rms_eps)
    w.add_rope_freq_base(c.rope_theta)
    w.add_vocab_size(c.vocab_size)
    if c.experts:  # under the architecture's prefix, as llama.cpp writes Mixtral's
        w.add_expert_count(c.experts)
        w.add_expert_used_count(c.experts_used)


def add_llama_metadata(w, c: AltUpConfig, name: str) -> None:
    add_backbone_metadata(w, c, name)
    w.add_rope_dimension_count(c.head_dim)


def add_metadata(w, c: AltUpConfig, name: str) -> None:
    add_backbone_metadata(w, c, name)
    w.add_uint32(f"{ARCH}.attention.sliding_window", c.sliding_window)
    w.add_uint32(f"{ARCH}.altup.num_inputs", c.K)
    w.add_bool(f"{ARCH}.altup.alternating", c.alternating)
    w.add_string(f"{ARCH}.altup.embedding", c.embedding)
    w.add_string(f"{ARCH}.altup.output", c.output)
    w.add_string(f"{ARCH}.ffn_activation", c.ffn_act)
    w.add_bool(f"{ARCH}.tie_word_embeddings", c.tie_embeddings)
    if c.experts and not all(c.moe):  # which layers have the experts (absent: every layer)
        w.add_array(f"{ARCH}.expert_layers", c.moe)
    if c.seq_stride > 1:  # Sequence-AltUp: every layer's stride (1: a dense layer)
        w.add_array(f"{ARCH}.sequence.stride", c.strides)


def add_stagformer_metadata(w, c: AltUpConfig, name: str) -> None:
    add_backbone_metadata(w, c, name)
    w.add_uint32(f"{STAGFORMER}.stack_count", c.stacks)
    w.add_bool(f"{STAGFORMER}.shared_weights", c.shared_stacks)
    w.add_uint32(f"{STAGFORMER}.cross_window", c.cross_window)
    w.add_string(f"{STAGFORMER}.ffn_activation", c.ffn_act)
    w.add_bool(f"{STAGFORMER}.tie_word_embeddings", c.tie_embeddings)


def add_tokenizer(w, tokenizer: Path, vocab_size: int) -> None:
    v = read_vocab(tokenizer)
    if len(v.tokens) != vocab_size:
        raise ConvertError(f"tokenizer {tokenizer} has {len(v.tokens)} tokens, the model {vocab_size}")
    w.add_tokenizer_model("llama")  # llama.cpp's name for SentencePiece BPE with byte fallback
    w.add_tokenizer_pre("default")
    w.add_token_list(v.tokens)
    w.add_token_scores(v.scores)
    w.add_token_types(v.types)
    w.add_bos_token_id(v.bos_id)
    w.add_eos_token_id(v.eos_id)
    w.add_unk_token_id(v.unk_id)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(v.add_dummy_prefix)
    w.add_remove_extra_whitespaces(v.remove_extra_whitespaces)


def convert(checkpoint: Path, tokenizer: Path | None, out: Path, dtype: str = "f16", name: str | None = None,
            progress: bool = True, arch: str = "altup") -> Path:
    """Writes `out`; raises ConvertError (leaving no output file) on any problem."""
    import gguf

    if arch not in ARCHS:
        raise ConvertError(f"unknown architecture {arch!r} (choose one of {', '.join(ARCHS)})")
    if dtype not in DTYPES:
        raise ConvertError(f"unknown output dtype {dtype!r} (choose one of {', '.join(DTYPES)})")
    if tokenizer is None:
        raise ConvertError("a tokenizer model is required (--tokenizer TOKENIZER.model)")
    check_input_file(tokenizer, "tokenizer model")
    out = Path(out)
    check_output_path(out, [Path(checkpoint), Path(tokenizer)])
    c, tensors = load_checkpoint(checkpoint)
    check_tensors(c, tensors)
    llama = arch == "llama"
    if c.stacks:
        if llama:
            raise ConvertError("cannot write a StagFormer as 'llama': it has cross-attention")
        arch = STAGFORMER
    if llama:
        check_llama_compatible(c, tensors)

    with atomic_output(out) as tmp:
        w = gguf.GGUFWriter(tmp, arch=arch)
        add = add_llama_metadata if llama else add_stagformer_metadata if c.stacks else add_metadata
        add(w, c, name or Path(checkpoint).stem)
        add_tokenizer(w, Path(tokenizer), c.vocab_size)
        w.add_file_type(FILE_TYPES[dtype])
        for src, (dst, _) in tensor_map(c).items():
            a = tensors[src]
            if llama and dst.endswith(("attn_q.weight", "attn_k.weight")):
                a = permute_for_llama(a, c.n_heads if dst.endswith("attn_q.weight") else c.n_kv_heads)
            if a.ndim == 1:  # norms stay f32: tiny, and precision-critical
                w.add_tensor(dst, to_dtype(a, "f32", dst)[0])
            else:
                data, raw = to_dtype(a, matrix_dtype(dst, a.shape, dtype, c.tie_embeddings), dst)
                w.add_tensor(dst, data, raw_dtype=raw)
        for l in range(0 if llama or c.stacks else c.n_layers):  # AltUp's few scalars per layer, always f32
            w.add_tensor(f"blk.{l}.altup_predict_coef.weight", np.ascontiguousarray(tensors["predict"][l], np.float32))
            w.add_tensor(f"blk.{l}.altup_correct_coef.weight", np.ascontiguousarray(tensors["correct"][l], np.float32))
            if c.strides[l] > 1:  # Sequence-AltUp's (α, β, γ)
                w.add_tensor(f"blk.{l}.seq_coef.weight", np.ascontiguousarray(tensors["seq"][l], np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file(progress=progress)
        w.close()
    return out

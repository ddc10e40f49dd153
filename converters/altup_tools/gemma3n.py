"""Hugging Face Gemma 3n checkpoint directory -> GGUF "gemma3n", in llama.cpp's layout.

Reads config.json, the safetensors shards (f32 / f16 / bf16) and tokenizer.model; writes the
text decoder only (the vision and audio towers are skipped, with one line saying so). Tensor
names and metadata keys are the gguf package's (llama.cpp's) for gemma3n, so the file has the
same shape as the one llama.cpp's convert_hf_to_gguf.py writes. Two choices differ, both
documented in docs/gemma3n-architecture.md:
  * the per-layer embedding table is padded to the text vocabulary with copies of its row 0
    (llama.cpp pads with zeros): transformers maps every id past the table to row 0;
  * the correct coefficients are clamped to +-altup_coef_clip here, as transformers does
    before each use, so a reader that does not clamp computes the same.
Tensors are converted one at a time from the memory-mapped shards; the output is written to
a temporary file beside --out and renamed when complete.
"""
from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path

import numpy as np

from .convert import FILE_TYPES, ConvertError, check_output_path, matrix_dtype, to_dtype
from .gguf_out import add_tensor_info, atomic_output, write_streamed
from .hf_checkpoint import Checkpoint, CheckpointError
from .tokenizer import UNUSED, read_vocab

ARCH = "gemma3n"
# Prefixes of the text decoder's tensors: the multimodal model, then the text-only layout.
TEXT_PREFIXES = ("model.language_model.", "model.")
SKIPPED_PREFIXES = ("model.vision_tower.", "model.audio_tower.", "model.embed_vision.", "model.embed_audio.")

# Defaults of transformers' Gemma3nTextConfig, used for keys config.json leaves out.
DEFAULTS = dict(vocab_size=262_400, vocab_size_per_layer_input=262_144, hidden_size=2048,
                hidden_size_per_layer_input=256, intermediate_size=16_384, num_hidden_layers=35,
                num_attention_heads=8, num_key_value_heads=2, head_dim=256, hidden_activation="gelu_pytorch_tanh",
                max_position_embeddings=32_768, rms_norm_eps=1e-6, rope_theta=1_000_000.0, rope_scaling=None,
                rope_local_base_freq=10_000.0, attention_bias=False, sliding_window=512, layer_types=None,
                final_logit_softcapping=30.0, altup_active_idx=0, altup_coef_clip=120.0, altup_correct_scale=True,
                altup_num_inputs=4, num_kv_shared_layers=15, laurel_rank=64, activation_sparsity_pattern=None)
RUNTIME_COEF_CLIP = 120.0  # what altup.cpp (and transformers' default) clamps to

# HF name (after the prefix, "{l}" for the layer) -> GGUF name.
LAYER_MAP = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm", "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    "per_layer_input_gate": "inp_gate", "per_layer_projection": "proj", "post_per_layer_input_norm": "post_norm",
    "altup.correct_output_scale": "altup_correct_scale", "altup.correction_coefs": "altup_correct_coef",
    "altup.prediction_coefs": "altup_predict_coef", "altup.modality_router": "altup_router",
    "altup.router_norm": "altup_router_norm", "laurel.linear_left": "laurel_l", "laurel.linear_right": "laurel_r",
    "laurel.post_laurel_norm": "laurel_post_norm",
}
GLOBAL_MAP = {"embed_tokens": "token_embd", "embed_tokens_per_layer": "per_layer_token_embd",
              "per_layer_model_projection": "per_layer_model_proj", "per_layer_projection_norm": "per_layer_proj_norm",
              "norm": "output_norm"}
# Small matrices kept f32 whatever --dtype says: the router and its coefficients are a few
# hundred numbers per layer, and every stream's mixing depends on them.
KEEP_F32 = ("altup_router.weight", "altup_predict_coef.weight", "altup_correct_coef.weight")


def text_config(cfg: dict) -> dict:
    """The text decoder's config with transformers' defaults filled in, checked."""
    model_type = cfg.get("model_type")
    if model_type == "gemma3n":
        t = cfg.get("text_config")
        if not isinstance(t, dict):
            raise ConvertError("config.json: model_type gemma3n without a text_config object")
    elif model_type == "gemma3n_text":
        t = cfg
    else:
        raise ConvertError(f"config.json: model_type is {model_type!r}; this converter reads gemma3n and gemma3n_text")
    c = {**DEFAULTS, **{k: v for k, v in t.items() if k in DEFAULTS}}
    ints = ("vocab_size", "vocab_size_per_layer_input", "hidden_size", "hidden_size_per_layer_input",
            "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
            "sliding_window", "altup_active_idx", "altup_num_inputs", "num_kv_shared_layers", "laurel_rank")
    for k in ints:
        if not isinstance(c[k], int) or isinstance(c[k], bool) or c[k] < (0 if k in (
                "altup_active_idx", "num_kv_shared_layers") else 1):
            raise ConvertError(f"config.json: {k} = {c[k]!r} must be a {'non-negative' if k in ('altup_active_idx', 'num_kv_shared_layers') else 'positive'} integer")
    L = c["num_hidden_layers"]
    ffn = c["intermediate_size"]
    ffn = [ffn] * L if isinstance(ffn, int) else list(ffn)
    if len(ffn) != L or not all(isinstance(f, int) and f > 0 for f in ffn):
        raise ConvertError(f"config.json: intermediate_size must be a positive integer or {L} of them")
    c["intermediate_size"] = ffn
    if c["layer_types"] is None:
        c["layer_types"] = ["full_attention" if (i + 1) % 5 == 0 else "sliding_attention" for i in range(L)]
    if len(c["layer_types"]) != L or not set(c["layer_types"]) <= {"full_attention", "sliding_attention"}:
        raise ConvertError(f"config.json: layer_types must list {L} of full_attention / sliding_attention")
    sp = c["activation_sparsity_pattern"]
    if sp is None:
        n = 10 if L > 10 else 0
        sp = [0.95] * n + [0.0] * (L - n)
    elif isinstance(sp, (int, float)):
        sp = [float(sp)] * L
    if len(sp) != L or not all(isinstance(p, (int, float)) and 0 <= p < 1 for p in sp):
        raise ConvertError(f"config.json: activation_sparsity_pattern must be {L} numbers in [0, 1)")
    c["activation_sparsity_pattern"] = [float(p) for p in sp]
    if not 2 <= c["altup_num_inputs"] <= 8 or c["altup_active_idx"] >= c["altup_num_inputs"]:
        raise ConvertError("config.json: altup_num_inputs must be 2..8 and altup_active_idx below it")
    if c["num_kv_shared_layers"] >= L:
        raise ConvertError(f"config.json: num_kv_shared_layers = {c['num_kv_shared_layers']} leaves no layer "
                           "with its own K / V")
    if c["num_attention_heads"] % c["num_key_value_heads"]:
        raise ConvertError("config.json: num_attention_heads must be a multiple of num_key_value_heads")
    if c["hidden_activation"] != "gelu_pytorch_tanh":
        raise ConvertError(f"config.json: hidden_activation {c['hidden_activation']!r} (altup.cpp runs "
                           "gelu_pytorch_tanh, as every Gemma 3n does)")
    if c["rope_scaling"] is not None:
        raise ConvertError("config.json: rope_scaling is set; altup.cpp runs Gemma 3n's plain RoPE only")
    if c["attention_bias"]:
        raise ConvertError("config.json: attention_bias is true; Gemma 3n has no biases")
    if not c["altup_correct_scale"]:
        raise ConvertError("config.json: altup_correct_scale is false; the gemma3n GGUF layout always applies it")
    if c["vocab_size_per_layer_input"] > c["vocab_size"]:
        raise ConvertError("config.json: vocab_size_per_layer_input exceeds vocab_size")
    return c


def source_names(ckpt: Checkpoint) -> tuple[str, dict[str, str]]:
    """(prefix, {short name -> full name}) of the text decoder's tensors; notes what is skipped."""
    names = list(ckpt.tensors)
    prefix = next((p for p in TEXT_PREFIXES if any(n.startswith(p + "embed_tokens.") for n in names)), None)
    if prefix is None:
        raise ConvertError("no text decoder found: expected model.language_model.embed_tokens.weight "
                           "(or model.embed_tokens.weight in a text-only checkpoint)")
    skipped = [n for n in names if n.startswith(SKIPPED_PREFIXES)]
    if skipped:
        print(f"skipping {len(skipped)} vision / audio tensors (text decoder only)", file=sys.stderr)
    short = {n[len(prefix):]: n for n in names if n.startswith(prefix) and not n.startswith(SKIPPED_PREFIXES)}
    return prefix, short


def plan(c: dict) -> list[tuple[str, list[str], tuple[int, ...]]]:
    """[(GGUF name, HF sources, expected shape of each source)] in writing order."""
    H, L, K, P = c["hidden_size"], c["num_hidden_layers"], c["altup_num_inputs"], c["hidden_size_per_layer_input"]
    hd, nq, nkv, r = c["head_dim"], c["num_attention_heads"], c["num_key_value_heads"], c["laurel_rank"]
    V, Vp = c["vocab_size"], c["vocab_size_per_layer_input"]
    out = [("token_embd.weight", ["embed_tokens.weight"], (V, H)),
           ("per_layer_token_embd.weight", ["embed_tokens_per_layer.weight"], (Vp, L * P)),
           ("per_layer_model_proj.weight", ["per_layer_model_projection.weight"], (L * P, H)),
           ("per_layer_proj_norm.weight", ["per_layer_projection_norm.weight"], (P,)),
           ("altup_proj.weight", [f"altup_projections.{k}.weight" for k in range(K - 1)], (H, H)),
           ("altup_unembd_proj.weight", [f"altup_unembed_projections.{k}.weight" for k in range(K - 1)], (H, H)),
           ("output_norm.weight", ["norm.weight"], (H,))]
    for l in range(L):
        F = c["intermediate_size"][l]
        shapes = {"input_layernorm": (H,), "self_attn.q_proj": (nq * hd, H), "self_attn.k_proj": (nkv * hd, H),
                  "self_attn.v_proj": (nkv * hd, H), "self_attn.o_proj": (H, nq * hd), "self_attn.q_norm": (hd,),
                  "self_attn.k_norm": (hd,), "post_attention_layernorm": (H,), "pre_feedforward_layernorm": (H,),
                  "post_feedforward_layernorm": (H,), "mlp.gate_proj": (F, H), "mlp.up_proj": (F, H),
                  "mlp.down_proj": (H, F), "per_layer_input_gate": (P, H), "per_layer_projection": (H, P),
                  "post_per_layer_input_norm": (H,), "altup.correct_output_scale": (H,),
                  "altup.correction_coefs": (K, K), "altup.prediction_coefs": (K * K, K),
                  "altup.modality_router": (K, H), "altup.router_norm": (H,), "laurel.linear_left": (r, H),
                  "laurel.linear_right": (H, r), "laurel.post_laurel_norm": (H,)}
        for src, dst in LAYER_MAP.items():
            param = "" if src == "altup.correct_output_scale" else ".weight"  # a bare nn.Parameter
            out.append((f"blk.{l}.{dst}.weight", [f"layers.{l}.{src}{param}"], shapes[src]))
    return out


def check_plan(p, short: dict[str, str], ckpt: Checkpoint) -> None:
    """Every source present with its shape, nothing left unread; all problems at once."""
    problems, used = [], set()
    for _, sources, shape in p:
        for s in sources:
            used.add(s)
            if s not in short:
                problems.append(f"missing tensor {s} {list(shape)}")
            elif ckpt.tensors[short[s]].shape != shape:
                problems.append(f"tensor {s} has shape {list(ckpt.tensors[short[s]].shape)}, expected {list(shape)}")
    # Buffers transformers may save alongside; nothing else is allowed to go unread.
    extra = sorted(n for n in set(short) - used if n != "lm_head.weight" and not n.endswith("rotary_emb.inv_freq"))
    problems += [f"unexpected tensor {n} (not part of the Gemma 3n text decoder)" for n in extra]
    if problems:
        more = f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""
        raise ConvertError("the checkpoint does not match its config:\n  " + "\n  ".join(problems[:8]) + more)


def add_metadata(w, c: dict, name: str) -> None:
    L = c["num_hidden_layers"]
    w.add_name(name)
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(L)
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(c["num_key_value_heads"])
    w.add_key_length(c["head_dim"])
    w.add_value_length(c["head_dim"])
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_rope_freq_base(c["rope_theta"])
    w.add_rope_freq_base_swa(c["rope_local_base_freq"])
    w.add_sliding_window(c["sliding_window"])
    w.add_sliding_window_pattern([t == "sliding_attention" for t in c["layer_types"]])
    w.add_shared_kv_layers(c["num_kv_shared_layers"])
    w.add_altup_num_inputs(c["altup_num_inputs"])
    w.add_altup_active_idx(c["altup_active_idx"])
    w.add_embedding_length_per_layer_input(c["hidden_size_per_layer_input"])
    if c["final_logit_softcapping"] is not None:
        w.add_final_logit_softcapping(c["final_logit_softcapping"])
    # llama.cpp stores the threshold's multiplier icdf_normal(p), -inf for a dense layer.
    w.add_activation_sparsity_scale([statistics.NormalDist().inv_cdf(p) if p > 0 else -math.inf
                                     for p in c["activation_sparsity_pattern"]])


def add_tokenizer(w, tokenizer: Path, vocab_size: int) -> None:
    """The SentencePiece vocabulary under llama.cpp's keys, padded to the model's vocabulary
    with unused [PAD<id>] pieces as llama.cpp's converter pads it."""
    v = read_vocab(tokenizer)
    if len(v.tokens) > vocab_size:
        raise ConvertError(f"tokenizer {tokenizer} has {len(v.tokens)} tokens, more than the model's {vocab_size}")
    pad = vocab_size - len(v.tokens)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(v.tokens + [f"[PAD{i}]" for i in range(len(v.tokens), vocab_size)])
    w.add_token_scores(v.scores + [-10000.0] * pad)
    w.add_token_types(v.types + [UNUSED] * pad)
    w.add_bos_token_id(v.bos_id)
    w.add_eos_token_id(v.eos_id)
    w.add_unk_token_id(v.unk_id)
    if v.pad_id >= 0:
        w.add_pad_token_id(v.pad_id)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(v.add_dummy_prefix)
    w.add_remove_extra_whitespaces(v.remove_extra_whitespaces)


def out_dtype(gguf_name: str, shape: tuple[int, ...], dtype: str) -> str:
    if len(shape) == 1 or gguf_name.endswith(KEEP_F32):
        return "f32"
    return matrix_dtype(gguf_name, shape, dtype, tied=True)


def convert_gemma3n(checkpoint: Path, out: Path, dtype: str = "f16", name: str | None = None,
                    tokenizer: Path | None = None, progress: bool = True) -> Path:
    """Writes `out`; raises ConvertError (leaving no output file) on any problem."""
    import gguf

    try:
        ckpt = Checkpoint(Path(checkpoint))
    except CheckpointError as e:
        raise ConvertError(str(e)) from e
    c = text_config(ckpt.config)
    tokenizer = Path(tokenizer) if tokenizer else ckpt.dir / "tokenizer.model"
    if not tokenizer.is_file():
        raise ConvertError(f"tokenizer {tokenizer} not found (pass --tokenizer)")
    out = Path(out)
    check_output_path(out, [tokenizer, *ckpt.inputs])
    _, short = source_names(ckpt)
    p = plan(c)
    check_plan(p, short, ckpt)
    if "lm_head.weight" in short:  # tied in every Gemma 3n; an untied head would be ignored
        if not np.array_equal(ckpt.get(short["lm_head.weight"]), ckpt.get(short["embed_tokens.weight"])):
            raise ConvertError("lm_head.weight differs from embed_tokens.weight; gemma3n ties them")

    def load(gguf_name: str, sources: list[str]) -> np.ndarray:
        a = np.stack([ckpt.get(short[s]) for s in sources]) if len(sources) > 1 or gguf_name.startswith(
            "altup_") else ckpt.get(short[sources[0]])
        if gguf_name == "per_layer_token_embd.weight" and a.shape[0] < c["vocab_size"]:
            a = np.concatenate([a, np.repeat(a[:1], c["vocab_size"] - a.shape[0], axis=0)])
        if gguf_name.endswith("altup_correct_coef.weight") and c["altup_coef_clip"] is not None:
            a = np.clip(a, -c["altup_coef_clip"], c["altup_coef_clip"])
            if np.abs(a).max(initial=0) > RUNTIME_COEF_CLIP:
                raise ConvertError(f"{gguf_name}: coefficients beyond ±{RUNTIME_COEF_CLIP} would be clamped by the "
                                   "runtime but not by this config")
        return a

    def shape_of(gguf_name: str, sources: list[str], shape: tuple[int, ...]) -> tuple[int, ...]:
        if gguf_name.startswith("altup_"):
            return (len(sources), *shape)
        if gguf_name == "per_layer_token_embd.weight":
            return (c["vocab_size"], shape[1])
        return shape

    with atomic_output(out) as tmp:
        w = gguf.GGUFWriter(tmp, arch=ARCH)
        add_metadata(w, c, name or ckpt.dir.name)
        add_tokenizer(w, tokenizer, c["vocab_size"])
        w.add_file_type(FILE_TYPES[dtype])
        jobs = []
        for gguf_name, sources, shape in p:
            full = shape_of(gguf_name, sources, shape)
            t = out_dtype(gguf_name, full, dtype)
            add_tensor_info(w, gguf_name, full, t)
            jobs.append((gguf_name, sources, t, full))

        def data_of(job):
            gguf_name, sources, t, full = job
            a = load(gguf_name, sources)
            assert a.shape == full, (gguf_name, a.shape, full)
            return to_dtype(a, t, gguf_name)[0]

        write_streamed(w, jobs, data_of, progress, "converting")
    return out

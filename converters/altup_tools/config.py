"""The hyper-parameters of an "altup" model: one dataclass, shared by the PyTorch reference,
the trainer and the converter, and written into the GGUF metadata so the runtime needs no
constants of its own. The binding definition is ../shared/reference/altup.md."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

# Annotations are strings under `from __future__ import annotations`.
_TYPES = {"int": int, "bool": bool, "str": str, "float": float}
_TYPE_NAMES = {int: "an integer", bool: "true or false", str: "a string", float: "a number"}


@dataclass
class AltUpConfig:
    vocab_size: int = 2048
    d: int = 128                  # width of one block (the transformer width)
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2
    head_dim: int = 32
    ffn_dim: int = 352
    context_length: int = 256
    K: int = 2                    # AltUp blocks; 1 is the dense model
    alternating: bool = True      # active block l mod K; False: always block 0
    embedding: str = "widened"    # "widened": table [V, K*d]; "recycled": [V, d] copied to every block
    output: str = "sum"           # "sum": h = sum_k x_k, unembedding [V, d]; "concat": [V, K*d]
    tie_embeddings: bool = False  # unembedding = embedding table (needs the same shape)
    ffn_act: str = "swiglu"       # "swiglu" or "geglu"
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    sliding_window: int = 0       # 0: full causal attention
    # MatFormer: the FFNs are trained nested at this many granularities, ffn_dim / 2^g for
    # g = 0 .. n-1 (4: F, F/2, F/4, F/8), so any prefix width runs as a smaller model
    # (`altup --ffn-widths`). 1: a plain FFN. Training only; the GGUF does not change.
    matformer: int = 1
    # StagFormer (docs/stagformer.md): 0, not one; p >= 1, the n_layers layers form p stacks of
    # n_layers / p, each stack after the first cross-attending to the previous stack's outputs
    # at earlier positions (p = 1 is the plain decoder in the "stagformer" format). K must be 1.
    stacks: int = 0
    # A mixture of experts in every layer's FFN (Mixtral's token-choice routing: softmax over
    # the experts, the top experts_used kept and renormalised); 0: a dense FFN.
    experts: int = 0
    experts_used: int = 2
    moe_layers: str = "all"       # the layers with experts: "all", "inner" or indices "0,2"; the others dense
    shared_stacks: bool = False   # every stack runs the first stack's layers (own cross-attention)
    cross_window: int = 0         # cross-attention reads the last w earlier positions; 0: all of them
    # Sequence-AltUp (docs/sequence-altup.md): the layers seq_layers names run on the anchors
    # only, the positions i with i mod seq_stride == 0; every other token is predicted and
    # corrected from its anchor with three trained scalars per layer. 1: off.
    seq_stride: int = 1
    seq_layers: str = "inner"     # "all", "inner" (all but the first and the last) or indices "1,2,4"

    def validate(self) -> None:
        # Types first: a config read from JSON may hold anything ("K": "2", "d": null).
        for f in fields(self):
            v, want = getattr(self, f.name), _TYPES[f.type]
            ok = isinstance(v, want) and not (want is not bool and isinstance(v, bool))
            if want is float and isinstance(v, int) and not isinstance(v, bool):
                ok = True
            if not ok:
                raise ValueError(f"{f.name} must be {_TYPE_NAMES[want]}, got {v!r}")
        for name in ("vocab_size", "d", "n_layers", "n_heads", "n_kv_heads", "head_dim", "ffn_dim", "context_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 1 <= self.matformer <= 8 or self.ffn_dim % (1 << (self.matformer - 1)):
            raise ValueError(f"matformer must be 1..8 with ffn_dim ({self.ffn_dim}) divisible by "
                             f"2^(matformer - 1), got {self.matformer}")
        if self.sliding_window < 0:
            raise ValueError(f"sliding_window must be 0 (off) or positive, got {self.sliding_window}")
        for name in ("rope_theta", "rms_eps"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        if self.K < 1 or self.K > 8:
            raise ValueError(f"K must be 1..8, got {self.K}")
        if self.embedding not in ("widened", "recycled"):
            raise ValueError(f"embedding must be 'widened' or 'recycled', got {self.embedding!r}")
        if self.output not in ("sum", "concat"):
            raise ValueError(f"output must be 'sum' or 'concat', got {self.output!r}")
        if self.output == "concat" and self.embedding != "widened":
            raise ValueError("a concatenated output needs a widened embedding")
        if self.ffn_act not in ("swiglu", "geglu"):
            raise ValueError(f"ffn_act must be 'swiglu' or 'geglu', got {self.ffn_act!r}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"{self.n_heads} heads cannot share {self.n_kv_heads} KV heads")
        if self.head_dim % 2:
            raise ValueError("head_dim must be even for RoPE")
        if self.experts and not (2 <= self.experts <= 256 and 1 <= self.experts_used <= self.experts):
            raise ValueError(f"a mixture of experts needs 2..256 experts and 1..experts used, got {self.experts} "
                             f"and {self.experts_used}")
        if self.experts and (self.matformer != 1 or self.stacks):
            raise ValueError("a mixture of experts is not combined with MatFormer or StagFormer here")
        if not 0 <= self.stacks <= 8:
            raise ValueError(f"stacks must be 0 (not a StagFormer) or 1..8, got {self.stacks}")
        if self.stacks:
            if self.K != 1 or self.matformer != 1:
                raise ValueError("a StagFormer is dense: K = 1 and matformer = 1")
            if self.n_layers % self.stacks:
                raise ValueError(f"{self.n_layers} layers do not split into {self.stacks} stacks")
            if self.sliding_window:
                raise ValueError("a StagFormer's self-attention has no sliding window here")
        if self.shared_stacks and self.stacks < 2:
            raise ValueError("shared_stacks needs at least 2 stacks")
        if self.cross_window < 0 or (self.cross_window and self.stacks < 2):
            raise ValueError(f"cross_window must be 0 (all earlier positions) or positive, on a StagFormer "
                             f"of 2 or more stacks, got {self.cross_window}")
        if not 1 <= self.seq_stride <= 64:
            raise ValueError(f"seq_stride must be 1 (off) .. 64, got {self.seq_stride}")
        self.seq_layer_list()  # raises on a malformed list
        if self.experts and not any(self.moe):
            raise ValueError(f"moe_layers {self.moe_layers!r} names no layer for the experts")
        if self.seq_stride > 1 and (self.stacks or self.sliding_window):
            raise ValueError("Sequence-AltUp is not combined with StagFormer or a sliding window here")
        if self.tie_embeddings and self.embed_width != self.out_width:
            raise ValueError("tied embeddings need the embedding and unembedding to have the same width")

    @property
    def embed_width(self) -> int:
        return self.K * self.d if self.embedding == "widened" else self.d

    @property
    def out_width(self) -> int:
        return self.K * self.d if self.output == "concat" else self.d

    @property
    def stack_depth(self) -> int:
        """Layers per StagFormer stack (h)."""
        return self.n_layers // self.stacks if self.stacks else self.n_layers

    @property
    def stored_layers(self) -> int:
        """Self-attention + FFN layers with weights of their own: one stack's when shared."""
        return self.stack_depth if self.shared_stacks else self.n_layers

    def layer_list(self, value: str, name: str) -> list[int]:
        """The layers a per-layer option names: "all", "inner" (all but the first and the
        last) or comma-separated indices."""
        L, v = self.n_layers, value.strip()
        if v == "all":
            return list(range(L))
        if v == "inner":
            return list(range(1, L - 1))
        try:
            layers = sorted({int(t) for t in v.split(",") if t.strip()})
        except ValueError:
            raise ValueError(f"{name} must be 'all', 'inner' or layer indices like '1,2', got {v!r}") from None
        if any(not 0 <= l < L for l in layers):
            raise ValueError(f"{name} {v!r} names a layer outside 0..{L - 1}")
        return layers

    def seq_layer_list(self) -> list[int]:
        """The layers Sequence-AltUp applies to (whatever the stride)."""
        return self.layer_list(self.seq_layers, "seq_layers")

    @property
    def moe(self) -> list[bool]:
        """Whether each layer's FFN is the mixture of experts."""
        on = set(self.layer_list(self.moe_layers, "moe_layers")) if self.experts else set()
        return [l in on for l in range(self.n_layers)]

    @property
    def strides(self) -> list[int]:
        """Each layer's Sequence-AltUp stride (1: a dense layer)."""
        on = set(self.seq_layer_list()) if self.seq_stride > 1 else set()
        return [self.seq_stride if l in on else 1 for l in range(self.n_layers)]

    def granularities(self) -> list[int]:
        """The nested FFN widths training optimises, smallest first (MatFormer)."""
        return [self.ffn_dim >> g for g in reversed(range(self.matformer))]

    def active_block(self, layer: int) -> int:
        return layer % self.K if self.alternating else 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AltUpConfig":
        if not isinstance(d, dict):
            raise ValueError(f"the config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        c = cls(**d)
        c.validate()
        return c

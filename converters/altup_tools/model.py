"""The PyTorch reference of the "altup" architecture (../shared/reference/altup.md).

Readable over fast: every line is one step of the math the C++ runtime implements, and the
golden tests compare the two. A Llama-style pre-norm backbone of width d runs on one block;
predict / correct update all K blocks:

    predict:  xhat_i = sum_k p[l][i][k] * x_k
    compute:  y      = Layer_l(x_j)            (the layer sees the INPUT block x_j)
    correct:  x'_i   = xhat_i + g[l][i] * (y - xhat_j)
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import AltUpConfig


class RMSNorm(nn.Module):
    def __init__(self, n: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T, head_dim/2] in f32: inv_freq = 1 / theta^(2i/hd), angle = pos * inv_freq."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """NeoX rotate-half on x [B, H, T, hd]: (a, b) -> (a cos - b sin, b cos + a sin)."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


class Attention(nn.Module):
    def __init__(self, c: AltUpConfig):
        super().__init__()
        self.c = c
        self.q = nn.Linear(c.d, c.n_heads * c.head_dim, bias=False)
        self.k = nn.Linear(c.d, c.n_kv_heads * c.head_dim, bias=False)
        self.v = nn.Linear(c.d, c.n_kv_heads * c.head_dim, bias=False)
        self.o = nn.Linear(c.n_heads * c.head_dim, c.d, bias=False)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        c = self.c
        B, T, _ = x.shape
        q = self.q(x).view(B, T, c.n_heads, c.head_dim).transpose(1, 2)      # [B, H, T, hd]
        k = self.k(x).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)   # [B, Hkv, T, hd]
        v = self.v(x).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
        cos, sin = rope_cos_sin(positions, c.head_dim, c.rope_theta)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        group = c.n_heads // c.n_kv_heads
        k = k.repeat_interleave(group, dim=1)                                # GQA: head h reads KV head h // group
        v = v.repeat_interleave(group, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(c.head_dim)             # [B, H, T, T]
        qpos, kpos = positions[:, None], positions[None, :]
        visible = kpos <= qpos
        if c.sliding_window:
            visible = visible & (qpos - kpos < c.sliding_window)
        scores = scores.masked_fill(~visible, float("-inf"))
        out = scores.softmax(-1) @ v                                         # [B, H, T, hd]
        return self.o(out.transpose(1, 2).reshape(B, T, c.n_heads * c.head_dim))


class FeedForward(nn.Module):
    def __init__(self, c: AltUpConfig):
        super().__init__()
        self.gate = nn.Linear(c.d, c.ffn_dim, bias=False)
        self.up = nn.Linear(c.d, c.ffn_dim, bias=False)
        self.down = nn.Linear(c.ffn_dim, c.d, bias=False)
        self.act = c.ffn_act

    def forward(self, x: torch.Tensor, m: int | None = None) -> torch.Tensor:
        """down[:, :m] (act(gate[:m] x) * up[:m] x): the first m hidden units (MatFormer);
        None: all of them."""
        m = m or self.gate.weight.shape[0]
        g = F.linear(x, self.gate.weight[:m])
        g = F.silu(g) if self.act == "swiglu" else F.gelu(g, approximate="tanh")
        return F.linear(g * F.linear(x, self.up.weight[:m]), self.down.weight[:, :m])


class MoE(nn.Module):
    """Mixtral's mixture of experts: softmax over the router's logits, the top k kept and
    renormalised, y = sum_e g_e FFN_e(x). Experts stacked as llama.cpp stores them."""

    def __init__(self, c: AltUpConfig):
        super().__init__()
        self.router = nn.Linear(c.d, c.experts, bias=False)
        self.gate = nn.Parameter(torch.empty(c.experts, c.ffn_dim, c.d))  # [E, F, d]
        self.up = nn.Parameter(torch.empty(c.experts, c.ffn_dim, c.d))
        self.down = nn.Parameter(torch.empty(c.experts, c.d, c.ffn_dim))  # [E, d, F]
        for p in (self.gate, self.up, self.down):
            nn.init.normal_(p, std=0.02)
        self.k, self.act = c.experts_used, c.ffn_act
        self.aux_loss = torch.zeros(())  # the last call's load-balancing loss (training)

    def forward(self, x: torch.Tensor, m: int | None = None) -> torch.Tensor:
        if m is not None:
            raise ValueError("a mixture of experts has no MatFormer widths")
        probs = self.router(x).softmax(-1)                                   # [.., E]
        top, ids = probs.topk(self.k, dim=-1)                                # [.., k]
        gates = top / top.sum(-1, keepdim=True)
        y = torch.zeros_like(x)
        for e in range(self.gate.shape[0]):
            w = (gates * (ids == e)).sum(-1, keepdim=True)                   # [.., 1], 0 where not chosen
            if not bool((ids == e).any()):
                continue
            g = F.linear(x, self.gate[e])
            g = F.silu(g) if self.act == "swiglu" else F.gelu(g, approximate="tanh")
            y = y + w * F.linear(g * F.linear(x, self.up[e]), self.down[e])
        # Switch Transformer's load balance: E * sum_e (fraction of choices to e) * (mean prob of e).
        E = self.gate.shape[0]
        frac = F.one_hot(ids, E).float().sum(-2).flatten(0, -2).mean(0) / self.k
        self.aux_loss = E * (frac * probs.flatten(0, -2).mean(0)).sum()
        return y


class Layer(nn.Module):
    """Llama-style pre-norm block of width d."""

    def __init__(self, c: AltUpConfig, moe: bool | None = None):
        super().__init__()
        self.attn_norm = RMSNorm(c.d, c.rms_eps)
        self.attn = Attention(c)
        self.ffn_norm = RMSNorm(c.d, c.rms_eps)
        self.ffn = MoE(c) if (bool(c.experts) if moe is None else moe) else FeedForward(c)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, ffn_width: int | None = None) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), positions)
        return x + self.ffn(self.ffn_norm(x), ffn_width)


class AltUpModel(nn.Module):
    def __init__(self, c: AltUpConfig):
        super().__init__()
        c.validate()
        self.c = c
        self.embed = nn.Embedding(c.vocab_size, c.embed_width)
        self.layers = nn.ModuleList(Layer(c, c.moe[l]) for l in range(c.n_layers))
        # p[l] starts as the identity and g[l] as ones: every block gets the layer's update.
        self.predict = nn.Parameter(torch.eye(c.K).repeat(c.n_layers, 1, 1))   # [L, K, K]
        self.correct = nn.Parameter(torch.ones(c.n_layers, c.K))              # [L, K]
        if c.K == 1:
            # K = 1 is the dense model: predict and correct stay exactly 1 (not trained, not
            # decayed), so a trained K = 1 model is a plain transformer and converts to "llama".
            self.predict.requires_grad_(False)
            self.correct.requires_grad_(False)
        # Sequence-AltUp's (α, β, γ) per layer, used by the layers whose stride is above 1. They
        # start at (1, 0, 1): a token takes its anchor's update y_a - x_a. Only a model that has
        # such layers holds them.
        if c.seq_stride > 1:
            self.seq = nn.Parameter(torch.tensor([[1.0, 0.0, 1.0]]).repeat(c.n_layers, 1))  # [L, 3]
        self.norm = RMSNorm(c.out_width, c.rms_eps)
        self.unembed = None if c.tie_embeddings else nn.Linear(c.out_width, c.vocab_size, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def blocks_of(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """The K blocks [B, T, d] each token starts with."""
        c = self.c
        e = self.embed(ids)
        if c.embedding == "widened":
            return [e[..., k * c.d:(k + 1) * c.d] for k in range(c.K)]
        return [e for _ in range(c.K)]                                       # Recycled-AltUp

    def step(self, l: int, x: list[torch.Tensor], positions: torch.Tensor, width: int | None) -> list[torch.Tensor]:
        """Layer l's AltUp step on the K blocks [B, T, d]: predict, the layer on the active
        block, correct (altup.md)."""
        c = self.c
        j = c.active_block(l)
        p, g = self.predict[l], self.correct[l]
        xhat = [sum(p[i, k] * x[k] for k in range(c.K)) for i in range(c.K)]
        y = self.layers[l](x[j], positions, width)
        return [xhat[i] + g[i] * (y - xhat[j]) for i in range(c.K)]

    def sequence_step(self, l: int, x: list[torch.Tensor], positions: torch.Tensor, width: int | None,
                      k: int) -> list[torch.Tensor]:
        """Sequence-AltUp (docs/sequence-altup.md): layer l's step on the anchors only (positions
        i mod k == 0: attention among them, RoPE at their own positions), then for every token
        x̂ = α x + β x_a, x' = x̂ + γ (y_a − (α + β) x_a) from its anchor a = k floor(i / k); the
        anchors take y_a. Positions must be consecutive and start at an anchor. k = 1 is step()."""
        if positions[0] % k or bool((positions[1:] - positions[:-1] != 1).any()):
            raise ValueError(f"Sequence-AltUp (stride {k}) needs consecutive positions from an anchor, "
                             f"got {positions[:4].tolist()}...")
        anchor = positions % k == 0                                    # [T]
        rows = anchor.nonzero().squeeze(1)                             # [A]
        ya = self.step(l, [b[:, rows] for b in x], positions[rows], width)
        j = torch.cumsum(anchor.long(), 0) - 1                         # [T]: each token's anchor among them
        alpha, beta, gamma = self.seq[l]
        out = []
        for xb, yb in zip(x, ya):
            xa, ya_t = xb[:, rows][:, j], yb[:, j]                     # [B, T, d]: the anchor's x and y per token
            xhat = alpha * xb + beta * xa
            xn = xhat + gamma * (ya_t - (alpha + beta) * xa)
            out.append(torch.where(anchor[None, :, None], ya_t, xn))
        return out

    def forward(self, ids: torch.Tensor, positions: torch.Tensor | None = None,
                ffn_widths: int | list[int] | None = None, skip_layers: tuple[int, ...] = ()) -> torch.Tensor:
        """Logits [B, T, V] for token ids [B, T] at positions [T] (default 0..T-1). A MatFormer
        sub-model: ffn_widths, one FFN width for every layer or one per kept layer (None: all);
        skip_layers, layers left out (a kept layer keeps its own active block)."""
        c = self.c
        if positions is None:
            positions = torch.arange(ids.shape[1])
        kept = [l for l in range(c.n_layers) if l not in skip_layers]
        widths = dict(zip(kept, ffn_widths if isinstance(ffn_widths, (list, tuple)) else [ffn_widths] * len(kept)))
        x = self.blocks_of(ids)
        for l in range(c.n_layers):
            if l not in widths:
                continue
            if c.strides[l] == 1:
                x = self.step(l, x, positions, widths[l])
            else:
                x = self.sequence_step(l, x, positions, widths[l], c.strides[l])
        h = sum(x) if c.output == "sum" else torch.cat(x, dim=-1)
        h = self.norm(h)
        w = self.embed.weight if self.unembed is None else self.unembed.weight
        return h @ w.T

"""The PyTorch reference of the "stagformer" architecture (docs/stagformer.md), the authority
the runtime's golden tests are checked against: no other library has StagFormer.

L = n_layers layers form p stacks of h = L / p. Every stack starts from the token embeddings.
Stack 0 is a plain causal decoder. Stack s >= 1 runs, in each of its layers, self-attention,
then cross-attention over the memory of stack s - 1, then the FFN (each pre-norm, residual):

    m^{s-1}_j = RMSNorm_{s-1}(output of stack s - 1 at position j)       (mem_norm.{s-1})
    cross_i   = softmax over j in [i - w, i - 1] (all j < i when w = 0) of
                RoPE(q_i, i) . RoPE(k_j, j) / sqrt(hd), applied to v_j;  0 when no j is visible
    logits    = RMSNorm(output of stack p - 1) . W_out

so at decode step i stack s needs only the memory of tokens < i: every stack can run at once.
Shared weights: every stack runs stack 0's self-attention / FFN layers; each stack >= 1 keeps
its own cross-attention. The recurrent approximation (shared weights, inference only) runs one
pass per token, stack 1's, whose memory is its own earlier outputs.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .config import AltUpConfig
from .model import Attention, Layer, RMSNorm, apply_rope, rope_cos_sin


class CrossAttention(Attention):
    """Self-attention's weights (q, k, v, o), queried from the stack's own rows, keyed by the
    memory at strictly earlier positions."""

    def heads(self, t: torch.Tensor, n: int) -> torch.Tensor:
        B, T, _ = t.shape
        return t.view(B, T, n, self.c.head_dim).transpose(1, 2)  # [B, n, T, hd]

    def forward(self, xn: torch.Tensor, mem: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """xn [B, T, d] (normed), mem [B, T, d]: the memory at the same positions [T]."""
        c = self.c
        B, T, _ = xn.shape
        cos, sin = rope_cos_sin(positions, c.head_dim, c.rope_theta)
        q = apply_rope(self.heads(self.q(xn), c.n_heads), cos, sin)
        k = apply_rope(self.heads(self.k(mem), c.n_kv_heads), cos, sin)
        v = self.heads(self.v(mem), c.n_kv_heads)
        group = c.n_heads // c.n_kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(c.head_dim)            # [B, H, T, T]
        qpos, kpos = positions[:, None], positions[None, :]
        visible = kpos < qpos                                               # strictly earlier
        if c.cross_window:
            visible = visible & (qpos - kpos <= c.cross_window)
        weights = scores.masked_fill(~visible, float("-inf")).softmax(-1)
        weights = torch.where(visible.any(-1)[:, None], weights, torch.zeros_like(weights))  # nothing seen: 0
        out = weights @ v                                                   # [B, H, T, hd]
        return self.o(out.transpose(1, 2).reshape(B, T, c.n_heads * c.head_dim))

    def linear_form(self, mem: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The same for a window of 1: one visible key, weight 1, so o(v(m_{i-1})) at every
        position but the first (0 there). Positions must be consecutive."""
        c = self.c
        v = self.heads(self.v(mem), c.n_kv_heads).repeat_interleave(c.n_heads // c.n_kv_heads, dim=1)
        B, _, T, _ = v.shape
        out = self.o(v.transpose(1, 2).reshape(B, T, c.n_heads * c.head_dim))
        return torch.cat([torch.zeros_like(out[:, :1]), out[:, :-1]], dim=1)


class CrossBlock(nn.Module):
    def __init__(self, c: AltUpConfig):
        super().__init__()
        self.norm = RMSNorm(c.d, c.rms_eps)
        self.attn = CrossAttention(c)


class StagFormerModel(nn.Module):
    def __init__(self, c: AltUpConfig):
        super().__init__()
        c.validate()
        if not c.stacks:
            raise ValueError("not a StagFormer config (stacks = 0)")
        self.c = c
        self.embed = nn.Embedding(c.vocab_size, c.d)
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.stored_layers))
        self.cross = nn.ModuleList(CrossBlock(c) for _ in range((c.stacks - 1) * c.stack_depth))
        self.mem_norm = nn.ModuleList(RMSNorm(c.d, c.rms_eps) for _ in range(c.stacks - 1))
        self.norm = RMSNorm(c.d, c.rms_eps)
        self.unembed = None if c.tie_embeddings else nn.Linear(c.d, c.vocab_size, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def layer(self, s: int, i: int) -> Layer:
        """The self-attention + FFN layer i of stack s."""
        return self.layers[i if self.c.shared_stacks else s * self.c.stack_depth + i]

    def cross_block(self, s: int, i: int) -> CrossBlock:
        return self.cross[(s - 1) * self.c.stack_depth + i]

    def run_stack(self, s: int, x: torch.Tensor, mem: torch.Tensor | None, positions: torch.Tensor,
                  linear_cross: bool = False) -> torch.Tensor:
        for i in range(self.c.stack_depth):
            L = self.layer(s, i)
            x = x + L.attn(L.attn_norm(x), positions)
            if s > 0:
                X = self.cross_block(s, i)
                x = x + (X.attn.linear_form(mem, positions) if linear_cross else X.attn(X.norm(x), mem, positions))
            x = x + L.ffn(L.ffn_norm(x))
        return x

    def head(self, x: torch.Tensor) -> torch.Tensor:
        w = self.embed.weight if self.unembed is None else self.unembed.weight
        return self.norm(x) @ w.T

    def forward(self, ids: torch.Tensor, positions: torch.Tensor | None = None, ffn_widths=None,
                linear_cross: bool = False) -> torch.Tensor:
        """Logits [B, T, V] for ids [B, T] at positions [T] (default 0..T-1). linear_cross: the
        window-1 cross-attention in its linear-map form (a check; needs cross_window 1)."""
        if ffn_widths is not None:
            raise ValueError("a StagFormer has no MatFormer widths")
        if linear_cross and self.c.cross_window != 1:
            raise ValueError("the linear-map form is the cross-attention of a window of 1")
        if positions is None:
            positions = torch.arange(ids.shape[1])
        e = self.embed(ids)
        mem = None
        for s in range(self.c.stacks):
            x = self.run_stack(s, e, mem, positions, linear_cross)
            if s + 1 < self.c.stacks:
                mem = self.mem_norm[s](x)
        return self.head(x)

    @torch.no_grad()
    def forward_recurrent(self, ids: torch.Tensor) -> torch.Tensor:
        """The recurrent approximation of a shared-weights model: token by token, stack 1's pass
        (with its cross-attention) reads as memory the normed outputs of that same pass at
        earlier positions. Logits [B, T, V]. Quadratic (the prefix is re-run per token): a check."""
        c = self.c
        if not c.shared_stacks or c.stacks != 2:
            raise ValueError("the recurrent approximation is for a shared-weights model of 2 stacks")
        B, T = ids.shape
        e = self.embed(ids)
        mem = torch.zeros_like(e)
        logits = []
        for t in range(T):
            positions = torch.arange(t + 1)
            x = self.run_stack(1, e[:, :t + 1], mem[:, :t + 1], positions)[:, t]
            mem[:, t] = self.mem_norm[0](x)
            logits.append(self.head(x))
        return torch.stack(logits, dim=1)


def build_model(c: AltUpConfig) -> nn.Module:
    """The reference model a config describes: StagFormer (stacks > 0) or AltUp."""
    from .model import AltUpModel

    return StagFormerModel(c) if c.stacks else AltUpModel(c)

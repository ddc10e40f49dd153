// Blocks that more than one architecture builds: self-attention with a KV cache and the gated
// FFN, each configured per layer (LayerSpec, models/spec.h), so a model file holds only what is its own.
#pragma once

#include "models/builder.h"
#include "models/spec.h"
#include "ops/elementwise.h"

namespace altup {

struct AttentionWeights {
  WeightRef wq, wk, wv, wo;  // [H·hd, d], [Hkv·hd, d], [Hkv·hd, d], [d, H·hd]
  WeightRef q_norm, k_norm;  // [hd] per-head RMSNorm weights before RoPE (Gemma 3n); optional
};

struct AttentionShape {
  int64_t n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 1.0f;                // applied to q·k
  bool rope_adjacent_pairs = false;  // llama.cpp's "llama" layout
  bool v_norm = false;               // per-head RMSNorm without weight on v (Gemma 3n)
  float norm_eps = 1e-6f;            // for the per-head norms
};

// The layer's KV cache (state tensors [Hkv, ctx, hd]) and the token positions [T].
// ring: the cache holds fewer positions than the context, position p in slot p mod slots
// (ops/attention.h), as the decoder skeleton lays out a sliding-window layer's.
struct KvCache {
  TensorId k = kNoTensor, v = kNoTensor;
  bool ring = false;
};

// softmax(scale · RoPE(q) RoPE(k)ᵀ + causal/window mask) v, projected back to d:
//   q = xn Wqᵀ, k = xn Wkᵀ, v = xn Wvᵀ (k, v stored in the cache at their positions),
//   each optionally RMS-normed per head first (w.q_norm, w.k_norm, s.v_norm),
//   out = attention(q, cache) Woᵀ.                                      xn [T, d] -> [T, d]
// With cfg.attention == shared_cache the layer shares an earlier layer's K / V: it computes q only and
// attends over `cache`, which the caller passes as that source layer's (wk / wv unused).
// queries > 0: only the last `queries` rows of xn ask (q, attention and the output projection
// for them alone, [queries, d] out), while k and v are still stored for every row: what a
// prefill needs from its last cache-writing layer when only the last logits are wanted.
// slots [T]: the cache rows of the tokens, which also order them for the causal mask (a
// Sequence-AltUp layer's anchors, ops/seq_altup.h); kNoTensor: their positions. RoPE always
// takes the positions.
TensorId attention_block(Builder& b, TensorId xn, const AttentionWeights& w, const AttentionShape& s,
                         const LayerSpec& cfg, TensorId pos, KvCache cache, int64_t queries = 0,
                         TensorId slots = kNoTensor);

// down(act(gate(xn)) ⊙ up(xn)), with Gaussian top-k on the gate on a sparse_gated layer: then
// up is computed only where the gate kept a value, and with down_t (down transposed, [F, d];
// int8 with its scales down_s for a quantized down)
// the down projection reads only the weight rows of the non-zero inputs.
//                                                                       xn [T, d] -> [T, d]
TensorId gated_ffn(Builder& b, TensorId xn, WeightRef gate, WeightRef up, WeightRef down, ops::Act act,
                   const LayerSpec& cfg, WeightRef down_t = {}, WeightRef down_s = {});

// A mixture of experts (Mixtral's routing, ops/moe.h): logits = xn · routerᵀ, then the k
// chosen experts' gated FFNs weighted by their renormalised gates.        xn [T, d] -> [T, d]
TensorId moe_ffn_block(Builder& b, TensorId xn, WeightRef router, WeightRef gate_exps, WeightRef up_exps,
                       WeightRef down_exps, ops::Act act, const LayerSpec& cfg);

}  // namespace altup

#include "models/blocks.h"

#include <algorithm>

namespace altup {

TensorId attention_block(Builder& b, TensorId xn, const AttentionWeights& w, const AttentionShape& s,
                         const LayerSpec& cfg, TensorId pos, KvCache cache, int64_t queries, TensorId slots) {
  const CostScope cost(b, Cost::attention);
  const int64_t T = b.shape(xn).rows(), d = b.shape(xn).inner(), H = s.n_heads, Hkv = s.n_kv_heads, hd = s.head_dim;
  const ops::RopeParams rope{cfg.rope_base, s.rope_adjacent_pairs};
  // The asking rows (all, or the last `queries`) and their positions.
  const int64_t Tq = queries > 0 ? std::min(queries, T) : T;
  const TensorId xq = Tq == T ? xn : b.view("query_rows", xn, {Tq, d}, (T - Tq) * d);  // [Tq, d]
  const TensorId pos_q = Tq == T ? pos : b.view("query_pos", pos, {Tq}, T - Tq);       // [Tq]
  if (slots == kNoTensor) slots = pos;
  const TensorId slots_q = Tq == T ? slots : b.view("query_slots", slots, {Tq}, T - Tq);  // [Tq]
  const TensorId qh = b.view("q_heads", b.matmul("attn_q", xq, w.wq), {Tq, H, hd});       // [Tq, H, hd]
  if (w.q_norm) b.rms_norm_in_place("attn_q_norm", qh, w.q_norm, s.norm_eps);
  b.rope("rope_q", qh, pos_q, rope);
  // A KV-shared layer computes q only and reads its source's cache.
  if (cfg.attention == AttentionKind::own_cache) {
    const TensorId kh = b.view("k_heads", b.matmul("attn_k", xn, w.wk), {T, Hkv, hd});  // [T, Hkv, hd]
    const TensorId vh = b.view("v_heads", b.matmul("attn_v", xn, w.wv), {T, Hkv, hd});  // [T, Hkv, hd]
    if (w.k_norm) b.rms_norm_in_place("attn_k_norm", kh, w.k_norm, s.norm_eps);
    if (s.v_norm) b.rms_norm_in_place("attn_v_norm", vh, WeightRef{}, s.norm_eps);
    b.rope("rope_k", kh, pos, rope);
    b.kv_store("k_store", kh, slots, cache.k, cache.ring);
    b.kv_store("v_store", vh, slots, cache.v, cache.ring);
  }
  const TensorId att = b.attention("attention", qh, cache.k, cache.v, slots_q, {s.scale, cfg.window, cache.ring});
  return b.matmul("attn_output", b.view("attn_heads_joined", att, {Tq, H * hd}), w.wo);  // [Tq, d]
}

TensorId gated_ffn(Builder& b, TensorId xn, WeightRef gate, WeightRef up, WeightRef down, ops::Act act,
                   const LayerSpec& cfg, WeightRef down_t, WeightRef down_s) {
  const CostScope cost(b, Cost::ffn);
  TensorId g = b.matmul("ffn_gate", xn, gate);  // [T, ffn]
  TensorId u;                                   // [T, ffn]
  const bool sparse = cfg.ffn_kind == FfnKind::sparse_gated;
  if (sparse) {
    // Gaussian top-k zeroes about a fraction `sparsity` of g, and act(0) = 0 for every Act,
    // so up's entries there only ever meet a zero: compute just the others.
    g = b.gaussian_topk("ffn_sparsity", g, cfg.sparsity);
    u = b.matmul_masked("ffn_up", xn, up, g, 1.0f - cfg.sparsity);
  } else {
    u = b.matmul("ffn_up", xn, up);
  }
  const TensorId h = b.glu("ffn_act", g, u, act);  // [T, ffn], zero wherever g is
  if (sparse && down_t) return b.matmul_sparse("ffn_down", h, down, down_t, 1.0f - cfg.sparsity, down_s);
  return b.matmul("ffn_down", h, down);  // [T, d]
}

TensorId moe_ffn_block(Builder& b, TensorId xn, WeightRef router, WeightRef gate_exps, WeightRef up_exps,
                       WeightRef down_exps, ops::Act act, const LayerSpec& cfg) {
  TensorId logits;
  {
    const CostScope cost(b, Cost::router);
    logits = b.matmul("ffn_router", xn, router);  // [T, E]
  }
  const CostScope cost(b, Cost::experts);
  return b.moe_ffn("ffn_experts", xn, logits, gate_exps, up_exps, down_exps, {cfg.experts_used, act});
}

}  // namespace altup

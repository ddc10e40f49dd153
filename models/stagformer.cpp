#include "models/stagformer.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace altup {

namespace {
const std::vector<DType>& kMatrix = computable_dtypes();
const std::vector<DType> kVector = {DType::F32};
constexpr const char* kArch = "stagformer";
}  // namespace

Result<StagFormerHParams> StagFormerHParams::from_gguf(const GgufFile& f) {
  StagFormerHParams hp;
  const HParamReader r(f, kArch);
  auto key = [&](const char* k) { return r.key(k); };
  ALTUP_TRY(r.sizes(&hp.sizes));
  int64_t ffn = 0, stacks = 0;
  float rope_theta = 10000.0f;
  ALTUP_TRY(r.count("feed_forward_length", 1, kMaxWidth * 16, &ffn));
  if (r.has("rope.freq_base")) ALTUP_TRY(r.positive("rope.freq_base", INFINITY, &rope_theta));
  ALTUP_TRY(r.count("stack_count", 1, 8, &stacks));
  hp.stacks = static_cast<int>(stacks);
  ALTUP_TRY(r.count("cross_window", 0, kMaxContext, &hp.cross_window));
  ALTUP_TRY(r.flag("shared_weights", &hp.shared));
  ALTUP_TRY(r.activation(&hp.act));
  ALTUP_TRY(r.flag("tie_word_embeddings", &hp.tied));
  const int64_t stored = hp.sizes.n_layers;
  if (hp.shared && hp.stacks < 2)
    return make_error(key("shared_weights") + " is true but " + key("stack_count") + " = " + std::to_string(hp.stacks) +
                      ": there is no other stack to share with");
  if (!hp.shared && stored % hp.stacks)
    return make_error(key("block_count") + " = " + std::to_string(stored) + " layers do not split into " +
                      key("stack_count") + " = " + std::to_string(hp.stacks) + " stacks");
  if (hp.cross_window > 0 && hp.stacks < 2)
    return make_error(key("cross_window") + " = " + std::to_string(hp.cross_window) +
                      " but a single stack has no cross-attention");
  hp.depth = hp.shared ? stored : stored / hp.stacks;
  hp.spec.file_layers = stored;
  for (int s = 0; s < hp.stacks; ++s)
    for (int64_t i = 0; i < hp.depth; ++i) {
      LayerSpec l;
      l.weights = hp.shared ? i : s * hp.depth + i;
      l.stack = s;
      l.rope_base = rope_theta;
      l.ffn = l.ffn_in_file = ffn;
      l.cross = s > 0;
      l.cross_window = hp.cross_window;
      hp.spec.layers.push_back(l);
    }
  ALTUP_TRY(hp.spec.check());
  return hp;
}

namespace {
// Every tensor once: a shared layer of a later stack lists only its cross-attention (its self
// weights are the first stack's, copied over after binding).
WeightTable<StagFormerWeights, StagLayerWeights> weight_table(const StagFormerHParams& hp) {
  using L = StagLayerWeights;
  WeightTable<StagFormerWeights, StagLayerWeights> t;
  const int64_t d = hp.sizes.d, V = hp.sizes.vocab;
  t.global = {
      {"token_embd.weight", {V, d}, &kMatrix, true, &StagFormerWeights::embed},
      {"output_norm.weight", {d}, &kVector, true, &StagFormerWeights::output_norm},
  };
  if (!hp.tied) t.global.push_back({"output.weight", {V, d}, &kMatrix, true, &StagFormerWeights::output});
  const int64_t q = hp.sizes.n_heads * hp.sizes.head_dim, kv = hp.sizes.n_kv_heads * hp.sizes.head_dim;
  for (int64_t n = 0; n < hp.spec.size(); ++n) {
    const LayerSpec& s = hp.spec[n];
    std::vector<WeightRow<L>> rows;
    if (s.stack == 0 || !hp.shared) {
      rows = attention_rows<L>(s.weights, d, q, kv, &kMatrix, &kVector);
      append_ffn_rows<L>(s.weights, d, s.ffn, &kMatrix, &rows);
    }
    if (s.cross) {
      const std::string c = "cross." + std::to_string(n - hp.depth) + ".";  // layer i of stack s: (s-1)·h + i
      rows.push_back({c + "attn_norm.weight", {d}, &kVector, true, &L::cross_norm});
      rows.push_back({c + "attn_q.weight", {q, d}, &kMatrix, true, &L::cq});
      rows.push_back({c + "attn_k.weight", {kv, d}, &kMatrix, true, &L::ck});
      rows.push_back({c + "attn_v.weight", {kv, d}, &kMatrix, true, &L::cv});
      rows.push_back({c + "attn_output.weight", {d, q}, &kMatrix, true, &L::co});
      if (n % hp.depth == 0)
        rows.push_back(
            {"stack." + std::to_string(s.stack - 1) + ".mem_norm.weight", {d}, &kVector, true, &L::mem_norm});
    }
    t.layers.push_back(std::move(rows));
  }
  return t;
}
}  // namespace

Result<std::unique_ptr<StagFormerModel>> StagFormerModel::load(const GgufFile& f, const SubmodelChoice& choice) {
  if (!choice.empty())
    return make_error(
        "a StagFormer has no sub-models (--submodel, --skip-layers and --ffn-widths are for "
        "gemma3n and altup files)",
        ErrorKind::BadChoice);
  auto hp = StagFormerHParams::from_gguf(f);
  if (!hp) return hp.error();
  std::unique_ptr<StagFormerModel> m(new StagFormerModel());
  m->hp_ = std::move(*hp);
  const auto table = weight_table(m->hp_);
  ALTUP_TRY(m->bind(f, kArch, table.specs()));
  table.bind(m->bound_, &m->w_);
  // Shared weights: layer i of every later stack runs layer i of the first.
  if (m->hp_.shared)
    for (size_t n = static_cast<size_t>(m->hp_.depth); n < m->w_.layers.size(); ++n) {
      StagLayerWeights& L = m->w_.layers[n];
      const StagLayerWeights& first = m->w_.layers[n % static_cast<size_t>(m->hp_.depth)];
      L.attn_norm = first.attn_norm, L.wq = first.wq, L.wk = first.wk, L.wv = first.wv, L.wo = first.wo;
      L.ffn_norm = first.ffn_norm, L.gate = first.gate, L.up = first.up, L.down = first.down;
    }
  if (const char* e = std::getenv("ALTUP_STAGGER"); e && std::strcmp(e, "0") == 0) m->concurrent_ = false;
  return m;
}

uint64_t StagFormerModel::row_lookup_bytes() const {
  if (hp_.tied) return 0;
  auto bytes = tensor_bytes(w_.embed.view->dtype, w_.embed.view->shape);
  return bytes ? *bytes : 0;
}

// The forward pass of docs/stagformer.md.

// Every stack starts from the embeddings [T, d] (kept in p.side). A decode step that runs the
// stacks together starts them all: [p, d], row s for stack s.
TensorId StagFormerModel::prologue(Pass& p) const {
  p.b.cost(Cost::embedding);
  p.side = p.b.embedding("embed", w_.embed, p.ids);  // [T, d]
  if (!runs_together(p)) return p.side;
  const int64_t d = hp_.sizes.d;
  return p.b.view("stacks", p.b.altup_spread("stack_rows", p.side, hp_.stacks, d), {hp_.stacks, d});
}

KvPair StagFormerModel::memory_kv(Pass& p, int64_t l, TensorId mem, TensorId pos) const {
  Builder& b = p.b;
  const CostScope cost(b, Cost::memory);
  const StagLayerWeights& L = w_.layers[static_cast<size_t>(l)];
  const int64_t n = b.shape(mem).rows(), Hkv = hp_.sizes.n_kv_heads, hd = hp_.sizes.head_dim;
  const TensorId kh = b.view("cross_k_heads", b.matmul("cross_k", mem, L.ck), {n, Hkv, hd});  // [n, Hkv, hd]
  const TensorId vh = b.view("cross_v_heads", b.matmul("cross_v", mem, L.cv), {n, Hkv, hd});
  b.rope("cross_rope_k", kh, pos, {spec()[l].rope_base, false});
  return {kh, vh};
}

void StagFormerModel::store_kv(Pass& p, int64_t l, KvPair kv, TensorId pos) const {
  const CostScope cost(p.b, Cost::memory);
  const KvCache& c = p.cross_caches[static_cast<size_t>(l)];
  p.b.kv_store("cross_k_store", kv.k, pos, c.k, c.ring);
  p.b.kv_store("cross_v_store", kv.v, pos, c.v, c.ring);
}

void StagFormerModel::store_memory(Pass& p, int64_t l, TensorId mem, TensorId pos) const {
  store_kv(p, l, memory_kv(p, l, mem, pos), pos);
}

TensorId StagFormerModel::cross_attention(Pass& p, int64_t l, TensorId xn, TensorId pos) const {
  Builder& b = p.b;
  const CostScope cost(b, Cost::cross);
  const StagLayerWeights& L = w_.layers[static_cast<size_t>(l)];
  const int64_t n = b.shape(xn).rows(), H = hp_.sizes.n_heads, hd = hp_.sizes.head_dim;
  const KvCache& c = p.cross_caches[static_cast<size_t>(l)];
  const TensorId qh = b.view("cross_q_heads", b.matmul("cross_q", xn, L.cq), {n, H, hd});  // [n, H, hd]
  b.rope("cross_rope_q", qh, pos, {spec()[l].rope_base, false});
  // lag 1: a query at position i reads the memory at positions < i (none at 0: zeros).
  ops::AttentionParams a{1.0f / std::sqrt(static_cast<float>(hd)), spec()[l].cross_window, c.ring};
  a.lag = 1;
  const TensorId att = b.attention("cross_attention", qh, c.k, c.v, pos, a);
  return b.matmul("cross_output", b.view("cross_heads_joined", att, {n, H * hd}), L.co);  // [n, d]
}

// One layer of one stack (prefill, and decode when the stacks run one after the other).
void StagFormerModel::layer(Pass& p) const {
  const LayerSpec& s = *p.spec;
  if (runs_together(p)) {
    if (s.stack == 0) layer_all_stacks(p);  // the later stacks' layers ran with it
    return;
  }
  if (runs_in_branches(p)) {
    if (p.index == 0) stacks_in_branches(p);  // every layer of every stack
    return;
  }
  Builder& b = p.b;
  const StagLayerWeights& L = w_.layers[static_cast<size_t>(p.index)];
  const float eps = hp_.sizes.eps;
  const int64_t d = hp_.sizes.d, T = p.Tr;
  if (s.cross && p.index % hp_.depth == 0) {
    // A new stack: its memory is the previous stack's output, normed; it starts from the embeddings.
    p.memory = memory_norm(p, s.stack - 1, p.x);  // [T, d]
    p.x = p.side;
  }
  b.cost(Cost::attention);
  const AttentionShape attn{hp_.sizes.n_heads, hp_.sizes.n_kv_heads, hp_.sizes.head_dim,
                            1.0f / std::sqrt(static_cast<float>(hp_.sizes.head_dim))};
  const TensorId att = attention_block(b, b.rms_norm("attn_norm", p.x, L.attn_norm, eps),
                                       {L.wq, L.wk, L.wv, L.wo, {}, {}}, attn, s, p.pos_r, p.cache, p.queries());
  TensorId x = p.x;
  if (p.cut) {  // from here on the last row only
    x = b.view("x_last", p.x, {1, d}, (T - 1) * d);
    p.pos_r = b.view("pos_last", p.pos, {1}, p.T - 1);
    p.Tr = 1;
  }
  TensorId h = b.add("attn_residual", x, att);  // [Tr, d]
  if (s.cross) {
    store_memory(p, p.index, p.memory, p.pos);  // every row's: later tokens read them
    h = b.add("cross_residual", h,
              cross_attention(p, p.index, b.rms_norm("cross_norm", h, L.cross_norm, eps), p.pos_r));
  }
  b.cost(Cost::ffn);
  const TensorId ffn = gated_ffn(b, b.rms_norm("ffn_norm", h, L.ffn_norm, eps), L.gate, L.up, L.down, hp_.act, s);
  p.x = b.add("ffn_residual", h, ffn);
}

// Layer i of every stack at once for one token (shared weights): the rows [p, d] go through each
// self-attention and FFN weight together; each row keeps its own self-attention cache, and the
// rows of later stacks add their own cross-attention. After the last layer each stack's output
// but the last's becomes the memory the next stack reads from the next token on.
void StagFormerModel::layer_all_stacks(Pass& p) const {
  Builder& b = p.b;
  const int64_t P = hp_.stacks, h = hp_.depth, i = p.index, d = hp_.sizes.d;
  const int64_t H = hp_.sizes.n_heads, Hkv = hp_.sizes.n_kv_heads, hd = hp_.sizes.head_dim;
  const StagLayerWeights& L = w_.layers[static_cast<size_t>(i)];
  const float eps = hp_.sizes.eps;
  const ops::RopeParams rope{p.spec->rope_base, false};
  const TensorId X = p.x;  // [P, d]
  b.cost(Cost::attention);
  const TensorId xn = b.rms_norm("attn_norm", X, L.attn_norm, eps);
  const TensorId q = b.view("q_heads", b.matmul("attn_q", xn, L.wq), {P, H, hd});
  const TensorId k = b.view("k_heads", b.matmul("attn_k", xn, L.wk), {P, Hkv, hd});
  const TensorId v = b.view("v_heads", b.matmul("attn_v", xn, L.wv), {P, Hkv, hd});
  for (int64_t s = 0; s < P; ++s) {
    b.layer(static_cast<int>(s * h + i));
    const KvCache& c = p.caches[static_cast<size_t>(s * h + i)];
    const TensorId qs = b.view("q_stack", q, {1, H, hd}, s * H * hd);
    const TensorId ks = b.view("k_stack", k, {1, Hkv, hd}, s * Hkv * hd);
    b.rope("rope_q", qs, p.pos, rope);
    b.rope("rope_k", ks, p.pos, rope);
    b.kv_store("k_store", ks, p.pos, c.k, c.ring);
    b.kv_store("v_store", b.view("v_stack", v, {1, Hkv, hd}, s * Hkv * hd), p.pos, c.v, c.ring);
    const TensorId a = b.attention("attention", qs, c.k, c.v, p.pos,
                                   {1.0f / std::sqrt(static_cast<float>(hd)), p.spec->window, c.ring});
    b.copy_into("attention_to_rows", a, qs);  // row s of q is read: its output takes its place
  }
  b.layer(static_cast<int>(i));
  TensorId y = b.add("attn_residual", X, b.matmul("attn_output", b.view("attn_heads_joined", q, {P, H * hd}), L.wo));
  for (int64_t s = 1; s < P; ++s) {
    const int64_t l = s * h + i;
    b.layer(static_cast<int>(l));
    const TensorId ys = b.view("x_stack", y, {1, d}, s * d);
    b.cost(Cost::cross);
    const TensorId xc = b.rms_norm("cross_norm", ys, w_.layers[static_cast<size_t>(l)].cross_norm, eps);
    b.add_into("cross_residual", ys, cross_attention(p, l, xc, p.pos));
  }
  b.layer(static_cast<int>(i));
  b.cost(Cost::ffn);
  y = b.add("ffn_residual", y,
            gated_ffn(b, b.rms_norm("ffn_norm", y, L.ffn_norm, eps), L.gate, L.up, L.down, hp_.act, *p.spec));
  p.x = y;
  if (i + 1 < h) return;
  std::vector<TensorId> outs;
  for (int64_t s = 0; s < P; ++s) outs.push_back(b.view("x_stack", y, {1, d}, s * d));
  store_memories(p, outs);
  b.layer(static_cast<int>(i));
  p.x = outs.back();
}

// Each stack of one token as a branch: stack s's layers read only the embeddings, their own
// caches and the memory earlier steps stored, so the stacks share no data and run at once.
// Stack s < p-1 also makes the K / V its output gives the next stack's cross caches; only
// storing them waits for the join, since the next stack's branch reads those caches.
void StagFormerModel::stacks_in_branches(Pass& p) const {
  Builder& b = p.b;
  const float eps = hp_.sizes.eps;
  const int64_t h = hp_.depth;
  const AttentionShape attn{hp_.sizes.n_heads, hp_.sizes.n_kv_heads, hp_.sizes.head_dim,
                            1.0f / std::sqrt(static_cast<float>(hp_.sizes.head_dim))};
  std::vector<KvPair> kv(static_cast<size_t>(hp_.stacks * h));  // by the spec layer whose cross cache takes it
  for (int s = 0; s < hp_.stacks; ++s) {
    b.branch(s);
    TensorId x = p.side;  // [1, d]
    for (int64_t l = s * h; l < (s + 1) * h; ++l) {
      const LayerSpec& spec_l = spec()[l];
      const StagLayerWeights& L = w_.layers[static_cast<size_t>(l)];
      b.layer(static_cast<int>(l));
      b.cost(Cost::attention);
      const TensorId xn = b.rms_norm("attn_norm", x, L.attn_norm, eps);
      TensorId y = b.add("attn_residual", x,
                         attention_block(b, xn, {L.wq, L.wk, L.wv, L.wo, {}, {}}, attn, spec_l, p.pos,
                                         p.caches[static_cast<size_t>(l)]));
      if (spec_l.cross)
        y = b.add("cross_residual", y, cross_attention(p, l, b.rms_norm("cross_norm", y, L.cross_norm, eps), p.pos));
      b.cost(Cost::ffn);
      x = b.add("ffn_residual", y,
                gated_ffn(b, b.rms_norm("ffn_norm", y, L.ffn_norm, eps), L.gate, L.up, L.down, hp_.act, spec_l));
    }
    if (s + 1 == hp_.stacks) {
      p.x = x;
      break;
    }
    const TensorId mem = memory_norm(p, s, x);
    for (int64_t l = (s + 1) * h; l < (s + 2) * h; ++l) {
      b.layer(static_cast<int>(l));  // the layer whose cache it fills
      kv[static_cast<size_t>(l)] = memory_kv(p, l, mem, p.pos);
    }
  }
  b.join();
  for (int64_t l = h; l < hp_.stacks * h; ++l) {
    b.layer(static_cast<int>(l));
    store_kv(p, l, kv[static_cast<size_t>(l)], p.pos);
  }
}

TensorId StagFormerModel::memory_norm(Pass& p, int64_t s, TensorId out) const {
  const int64_t next = (s + 1) * hp_.depth;  // the next stack's first layer, which holds the memory's norm
  p.b.layer(static_cast<int>(next));
  const CostScope cost(p.b, Cost::memory);
  return p.b.rms_norm("mem_norm", out, w_.layers[static_cast<size_t>(next)].mem_norm, hp_.sizes.eps);
}

void StagFormerModel::store_memories(Pass& p, const std::vector<TensorId>& outs) const {
  for (int64_t s = 0; s + 1 < hp_.stacks; ++s) {
    const TensorId mem = memory_norm(p, s, outs[static_cast<size_t>(s)]);
    for (int64_t l = (s + 1) * hp_.depth; l < (s + 2) * hp_.depth; ++l) {
      p.b.layer(static_cast<int>(l));  // the layer whose cache it fills
      store_memory(p, l, mem, p.pos);
    }
  }
}

TensorId StagFormerModel::epilogue(Pass& p) const {
  Builder& b = p.b;
  const int64_t d = hp_.sizes.d;
  const TensorId rows = p.all_logits || p.Tr == 1 ? p.x : b.view("last_token", p.x, {1, d}, (p.Tr - 1) * d);
  b.cost(Cost::output);
  const TensorId hn = b.rms_norm("output_norm", rows, w_.output_norm, hp_.sizes.eps);
  return b.matmul("output", hn, hp_.tied ? w_.embed : w_.output);  // [rows, V]
}

}  // namespace altup

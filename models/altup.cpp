#include "models/altup.h"

#include <algorithm>
#include <cmath>

#include "ops/altup_mix.h"

namespace altup {

namespace {
// Matrices and the embedding table: every dtype matmul and the embedding lookup compute with
// (runtime/dtype.h). Norms and AltUp's coefficients stay f32.
const std::vector<DType>& kMatrix = computable_dtypes();
const std::vector<DType> kVector = {DType::F32};
}  // namespace

// Every hyper-parameter is checked for its range here, and against the others, before a
// weight list is built or anything is allocated: a file whose numbers do not fit together is
// refused with a message naming the key and its value (tests/test_model_validation.cpp).
Result<AltUpHParams> AltUpHParams::from_gguf(const GgufFile& f, std::string_view arch) {
  AltUpHParams hp;
  const HParamReader r(f, arch);
  auto key = [&](const char* k) { return r.key(k); };
  ALTUP_TRY(r.sizes(&hp.sizes));
  int64_t ffn = 0, window = 0;
  float rope_theta = 10000.0f;
  ALTUP_TRY(r.count("feed_forward_length", 1, kMaxWidth * 16, &ffn));
  if (r.has("rope.freq_base")) ALTUP_TRY(r.positive("rope.freq_base", INFINITY, &rope_theta));
  ALTUP_TRY(r.optional_count("attention.sliding_window", 0, kMaxContext, &window));
  // Sequence-AltUp: each layer's stride (absent: 1 everywhere).
  std::vector<int64_t> strides(static_cast<size_t>(hp.sizes.n_layers), 1);
  if (arch == "altup" && r.has("sequence.stride"))
    ALTUP_TRY(r.per_layer_counts("sequence.stride", hp.sizes.n_layers, 1, ops::kMaxSeqStride, &strides));
  // A mixture of experts in every layer (llama.cpp's keys for Mixtral files; "altup" takes the same).
  int64_t experts = 0, experts_used = 0;
  ALTUP_TRY(r.optional_count("expert_count", 0, ops::kMaxExperts, &experts));
  if (experts > 0) {
    ALTUP_TRY(r.count("expert_used_count", 1, experts, &experts_used));
  } else if (r.has("expert_used_count")) {  // no experts: none used (llama.cpp writes 0 for dense files)
    ALTUP_TRY(r.count("expert_used_count", 0, kMaxLayers, &experts_used));
    if (experts_used != 0)
      return make_error(key("expert_used_count") + " = " + std::to_string(experts_used) + " but the file has no " +
                        "experts (" + key("expert_count") + " is 0 or absent)");
  }

  // Which layers have the experts (absent: every layer).
  std::vector<bool> moe(static_cast<size_t>(hp.sizes.n_layers), experts > 0);
  if (arch == "altup" && r.has("expert_layers")) {
    if (experts == 0) return make_error(key("expert_layers") + " names layers for experts the file does not have");
    ALTUP_TRY(r.per_layer_flags("expert_layers", hp.sizes.n_layers, &moe));
    if (std::find(moe.begin(), moe.end(), true) == moe.end())
      return make_error(key("expert_layers") + " gives the experts to no layer");
  }

  if (arch == "altup") {
    int64_t K;
    ALTUP_TRY(r.count("altup.num_inputs", 1, ops::kMaxAltupBlocks, &K));
    hp.K = static_cast<int>(K);
    auto alt = f.get_bool(key("altup.alternating"));
    if (!alt) return alt.error();
    hp.alternating = *alt;
    auto emb = f.get_string(key("altup.embedding"));
    if (!emb) return emb.error();
    if (*emb != "widened" && *emb != "recycled")
      return make_error(key("altup.embedding") + " = '" + std::string(*emb) + "' is neither widened nor recycled");
    hp.widened = *emb == "widened";
    auto out = f.get_string(key("altup.output"));
    if (!out) return out.error();
    if (*out != "sum" && *out != "concat")
      return make_error(key("altup.output") + " = '" + std::string(*out) + "' is neither sum nor concat");
    hp.concat_out = *out == "concat";
    ALTUP_TRY(r.activation(&hp.act));
    ALTUP_TRY(r.flag("tie_word_embeddings", &hp.tied));
  } else {
    hp.tied = f.tensor("output.weight") == nullptr;  // llama.cpp omits output.weight when tied
    hp.rope_pairs_adjacent = true;                   // llama.cpp's converter permutes q / k for it
  }
  if (hp.tied && hp.embed_width() != hp.out_width())
    return make_error("tied embeddings need equal embedding and output widths (" + std::to_string(hp.embed_width()) +
                      " and " + std::to_string(hp.out_width()) + ")");
  // Every layer alike, each with its own K / V.
  hp.spec.file_layers = hp.sizes.n_layers;
  for (int64_t l = 0; l < hp.sizes.n_layers; ++l) {
    LayerSpec s;
    s.weights = l;
    s.window = window;
    s.rope_base = rope_theta;
    s.ffn = s.ffn_in_file = ffn;
    s.seq_stride = strides[static_cast<size_t>(l)];
    if (moe[static_cast<size_t>(l)]) {
      s.ffn_kind = FfnKind::moe;
      s.experts = experts;
      s.experts_used = experts_used;
    }
    hp.spec.layers.push_back(s);
  }
  ALTUP_TRY(hp.spec.check());
  return hp;
}

namespace {
// The weights, declared once: the weight list and the typed structs both come from here.
WeightTable<AltUpWeights, AltUpLayerWeights> weight_table(const AltUpHParams& hp) {
  using L = AltUpLayerWeights;
  WeightTable<AltUpWeights, AltUpLayerWeights> t;
  t.global = {
      {"token_embd.weight", {hp.sizes.vocab, hp.embed_width()}, &kMatrix, true, &AltUpWeights::embed},
      {"output_norm.weight", {hp.out_width()}, &kVector, true, &AltUpWeights::output_norm},
  };
  if (!hp.tied)
    t.global.push_back({"output.weight", {hp.sizes.vocab, hp.out_width()}, &kMatrix, true, &AltUpWeights::output});
  const int64_t d = hp.sizes.d, q = hp.sizes.n_heads * hp.sizes.head_dim, kv = hp.sizes.n_kv_heads * hp.sizes.head_dim;
  const bool coefs = hp.K > 1;  // a dense K = 1 model may omit them (predict = [[1]], correct = [1])
  for (const LayerSpec& s : hp.spec.layers) {
    const int64_t l = s.weights;
    auto rows = attention_rows<L>(l, d, q, kv, &kMatrix, &kVector);
    if (s.ffn_kind == FfnKind::moe) {  // the router and the experts stacked, as llama.cpp stores them
      const int64_t E = s.experts, F = s.ffn_in_file;
      rows.push_back({blk(l, "ffn_gate_inp.weight"), {E, d}, &kMatrix, true, &L::router});
      rows.push_back({blk(l, "ffn_gate_exps.weight"), {E, F, d}, &kMatrix, true, &L::gate});
      rows.push_back({blk(l, "ffn_up_exps.weight"), {E, F, d}, &kMatrix, true, &L::up});
      rows.push_back({blk(l, "ffn_down_exps.weight"), {E, d, F}, &kMatrix, true, &L::down});
    } else {
      append_ffn_rows<L>(l, d, s.ffn_in_file, &kMatrix, &rows);  // bound whole, then narrowed to s.ffn (narrow_ffns)
    }
    rows.push_back({blk(l, "altup_predict_coef.weight"), {hp.K, hp.K}, &kVector, coefs, &L::predict});
    rows.push_back({blk(l, "altup_correct_coef.weight"), {hp.K}, &kVector, coefs, &L::correct});
    if (s.seq_stride > 1) rows.push_back({blk(l, "seq_coef.weight"), {3}, &kVector, true, &L::seq});
    t.layers.push_back(std::move(rows));
  }
  return t;
}
}  // namespace

std::vector<WeightSpec> altup_weight_list(const AltUpHParams& hp) { return weight_table(hp).specs(); }

Result<std::unique_ptr<AltUpModel>> AltUpModel::load(const GgufFile& f, std::string_view arch,
                                                     const SubmodelChoice& choice) {
  auto hp = AltUpHParams::from_gguf(f, arch);
  if (!hp) return hp.error();
  std::unique_ptr<AltUpModel> m(new AltUpModel());
  m->arch_ = std::string(arch);
  m->hp_ = std::move(*hp);
  if (!choice.empty()) {
    auto sub = select_submodel(m->hp_.spec, choice);
    if (!sub) return sub.error();
    m->hp_.spec = std::move(*sub);
  }
  const auto table = weight_table(m->hp_);
  ALTUP_TRY(m->bind(f, arch, table.specs()));
  ALTUP_TRY(m->narrow_ffns([](int64_t) { return false; }, f.mapped()));
  table.bind(m->bound_, &m->w_);
  return m;
}

uint64_t AltUpModel::row_lookup_bytes() const {
  if (hp_.tied) return 0;
  auto bytes = tensor_bytes(w_.embed.view->dtype, w_.embed.view->shape);
  return bytes ? *bytes : 0;
}

// The forward pass of altup.md: the K-block ring, one transformer layer per step on the active
// block, then predict and correct keep every block current.

// Embed ([T, K·d] widened, [T, d] recycled), then spread over the ring [K, T, d].
TensorId AltUpModel::prologue(Pass& p) const {
  p.b.cost(Cost::embedding);
  const TensorId e = p.b.embedding("embed", w_.embed, p.ids);
  p.b.cost(Cost::altup);
  return p.b.altup_spread("altup_spread", e, hp_.K, hp_.sizes.d);
}

void AltUpModel::layer(Pass& p) const {
  const int64_t k = p.spec->seq_stride;
  if (k == 1) {
    p.x = step(p, p.x, p.pos_r, kNoTensor, p.cut);
    return;
  }
  // Sequence-AltUp: the step on this call's anchors only (rows first, first + k, ...: the
  // graph's phase says which), then every row corrected from its anchor, in this call or
  // (through the layer's state) an earlier one. A layer with a cache runs before any cut.
  Builder& b = p.b;
  const ops::SeqParams sp{k, ops::seq_first_anchor(p.phase, k)};
  const int64_t A = ops::seq_anchor_count(p.Tr, sp.first, k);
  TensorId ya = kNoTensor;
  if (A > 0) {
    {
      const CostScope cost(b, Cost::altup);
      ya = b.seq_anchors("seq_anchors", p.x, sp, A);  // [K, A, d], stepped in place (the ring keeps x_a)
    }
    const TensorId pos_a = b.seq_positions("seq_pos", p.pos_r, sp, A);  // [A]: RoPE at their positions
    const TensorId slots = b.seq_positions("seq_slots", p.pos_r, {k, sp.first, /*divide=*/true}, A);
    ya = step(p, ya, pos_a, slots, /*cut=*/false);
  }
  b.cost(Cost::correct);
  b.seq_correct("seq_correct", p.x, w_.layers[static_cast<size_t>(p.index)].seq, p.seq_state, p.pos_r, ya, sp);
  if (p.cut) p.x = p.keep_last_row(p.x);  // [K, 1, d]
}

TensorId AltUpModel::step(Pass& p, TensorId ring, TensorId pos, TensorId slots, bool cut) const {
  Builder& b = p.b;
  const int64_t d = hp_.sizes.d, T = b.shape(ring)[1];  // rows the ring holds
  const AltUpLayerWeights& L = w_.layers[static_cast<size_t>(p.index)];
  const int j = hp_.active_block(p.index);  // by its index in the file: a sub-model's layer keeps its block
  const AttentionShape attn{hp_.sizes.n_heads, hp_.sizes.n_kv_heads, hp_.sizes.head_dim,
                            1.0f / std::sqrt(static_cast<float>(hp_.sizes.head_dim)), hp_.rope_pairs_adjacent};
  const float eps = hp_.sizes.eps;
  // y = Layer_l(x_j): the layer sees the active block before predict rewrites the ring.
  b.cost(Cost::attention);
  const TensorId xj = b.view("x_active", ring, {T, d}, j * T * d);  // [T, d]
  const TensorId att =
      attention_block(b, b.rms_norm("attn_norm", xj, L.attn_norm, eps), {L.wq, L.wk, L.wv, L.wo, {}, {}}, attn, *p.spec,
                      pos, p.cache, cut ? 1 : 0, slots);  // [Tq, d]
  const TensorId xr = cut ? b.view("x_active_last", ring, {1, d}, j * T * d + (T - 1) * d) : xj;
  const TensorId h = b.add("attn_residual", xr, att);
  b.cost(Cost::ffn);
  const TensorId hn = b.rms_norm("ffn_norm", h, L.ffn_norm, eps);
  const TensorId ffn = p.spec->ffn_kind == FfnKind::moe
                           ? moe_ffn_block(b, hn, L.router, L.gate, L.up, L.down, hp_.act, *p.spec)
                           : gated_ffn(b, hn, L.gate, L.up, L.down, hp_.act, *p.spec);
  const TensorId y = b.add("ffn_residual", h, ffn);  // [Tq, d]
  if (cut) ring = p.keep_last_row(ring);             // [K, 1, d]
  if (L.predict) {
    // predict: x̂ = P x over the whole ring, in place; correct: x̂_i += g_i (y − x̂_j).
    // (Also for K = 1 when the file has coefficients: they are part of the model.)
    b.cost(Cost::predict);
    const TensorId predicted = b.altup_predict("altup_predict", ring, L.predict);
    b.cost(Cost::correct);
    b.altup_correct("altup_correct", predicted, y, L.correct, j);
  } else {
    // Dense without coefficients (P = [[1]], g = [1]): the one block becomes the layer's output.
    b.cost(Cost::altup);
    b.copy_into("copy_block", y, b.view("ring_dense", ring, {b.shape(ring)[1], d}));
  }
  return ring;
}

// Combine the blocks (sum or side by side), keep the rows whose logits are wanted, norm, unembed.
TensorId AltUpModel::epilogue(Pass& p) const {
  Builder& b = p.b;
  const int64_t out = hp_.out_width();
  b.cost(Cost::altup);
  const TensorId hcat = b.altup_collapse("altup_collapse", p.x, out);  // [Tr, out]
  const TensorId rows = p.all_logits || p.Tr == 1 ? hcat : b.view("last_token", hcat, {1, out}, (p.Tr - 1) * out);
  b.cost(Cost::output);
  const TensorId hn = b.rms_norm("output_norm", rows, w_.output_norm, hp_.sizes.eps);
  return b.matmul("output", hn, hp_.tied ? w_.embed : w_.output);  // [rows, V]
}

}  // namespace altup

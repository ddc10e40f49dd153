#include <algorithm>
#include <cmath>
#include <cstdio>

#include "models/altup.h"

#include "ops/altup_mix.h"

namespace altup {

namespace {
// Matrices and the embedding table: every dtype the GEMV / matmul kernels and the embedding
// lookup take. Norms and AltUp's coefficients stay f32.
// Every type matmul and the embedding lookup compute with (runtime/dtype.h).
const std::vector<DType>& kMatrix = computable_dtypes();
const std::vector<DType>& kTable = kMatrix;
const std::vector<DType> kVector = {DType::F32};

}  // namespace

// Every hyper-parameter is checked for its range here, and against the others, before a
// weight list is built or anything is allocated: a file whose numbers do not fit together is
// refused with a message naming the key and its value (tests/test_model_validation.cpp).
Result<AltUpHParams> AltUpHParams::from_gguf(const GgufFile& f, std::string_view arch) {
  AltUpHParams hp;
  const HParamReader r(f, arch);
  auto key = [&](const char* k) { return r.key(k); };
  auto count = [&](const char* k, int64_t lo, int64_t hi, int64_t* out) { return r.count(k, lo, hi, out); };
  auto optional_count = [&](const char* k, int64_t lo, int64_t hi, int64_t* out) {
    return r.optional_count(k, lo, hi, out);
  };
  auto positive = [&](const char* k, double hi, float* out) { return r.positive(k, hi, out); };
  TransformerSizes sizes;
  ALTUP_TRY(r.sizes(&sizes));
  hp.vocab = sizes.vocab, hp.d = sizes.d, hp.n_layers = sizes.n_layers, hp.ctx = sizes.ctx, hp.eps = sizes.eps;
  hp.n_heads = sizes.n_heads, hp.n_kv_heads = sizes.n_kv_heads, hp.head_dim = sizes.head_dim;
  ALTUP_TRY(count("feed_forward_length", 1, kMaxWidth * 16, &hp.ffn));
  if (f.find(key("rope.freq_base"))) ALTUP_TRY(positive("rope.freq_base", INFINITY, &hp.rope_theta));
  hp.window = 0;
  ALTUP_TRY(optional_count("attention.sliding_window", 0, kMaxContext, &hp.window));

  if (arch == "altup") {
    int64_t K;
    ALTUP_TRY(count("altup.num_inputs", 1, ops::kMaxAltupBlocks, &K));
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
    auto act = f.get_string(key("ffn_activation"));
    if (!act) return act.error();
    if (*act == "swiglu")
      hp.act = ops::Act::Silu;
    else if (*act == "geglu")
      hp.act = ops::Act::GeluTanh;
    else
      return make_error(key("ffn_activation") + " = '" + std::string(*act) + "' is neither swiglu nor geglu");
    auto tie = f.get_bool(key("tie_word_embeddings"));
    if (!tie) return tie.error();
    hp.tied = *tie;
  } else {
    hp.tied = f.tensor("output.weight") == nullptr;  // llama.cpp omits output.weight when tied
    hp.rope_pairs_adjacent = true;                   // llama.cpp's converter permutes q / k for it
  }
  if (hp.tied && hp.embed_width() != hp.out_width())
    return make_error("tied embeddings need equal embedding and output widths (" + std::to_string(hp.embed_width()) +
                      " and " + std::to_string(hp.out_width()) + ")");
  LayerConfig same;  // "altup" and "llama": every layer alike, each with its own K / V
  same.window = hp.window;
  same.rope_base = hp.rope_theta;
  same.ffn = hp.ffn;
  hp.layers.assign(static_cast<size_t>(hp.n_layers), same);
  return hp;
}

// The weights, declared once: the weight list and the typed structs both come from here.
std::vector<WeightRow<AltUpWeights>> altup_global_rows(const AltUpHParams& hp) {
  std::vector<WeightRow<AltUpWeights>> rows = {
      {"token_embd.weight", {hp.vocab, hp.embed_width()}, hp.tied ? &kMatrix : &kTable, true, &AltUpWeights::embed},
      {"output_norm.weight", {hp.out_width()}, &kVector, true, &AltUpWeights::output_norm},
  };
  if (!hp.tied) rows.push_back({"output.weight", {hp.vocab, hp.out_width()}, &kMatrix, true, &AltUpWeights::output});
  return rows;
}

std::vector<WeightRow<AltUpLayerWeights>> altup_layer_rows(const AltUpHParams& hp, int64_t l) {
  using L = AltUpLayerWeights;
  const int64_t d = hp.d, q = hp.n_heads * hp.head_dim, kv = hp.n_kv_heads * hp.head_dim;
  const int64_t ffn = hp.layers[static_cast<size_t>(l)].ffn;
  const bool coefs = hp.K > 1;  // a dense K = 1 model may omit them (predict = [[1]], correct = [1])
  return {
      {blk(l, "attn_norm.weight"), {d}, &kVector, true, &L::attn_norm},
      {blk(l, "attn_q.weight"), {q, d}, &kMatrix, true, &L::wq},
      {blk(l, "attn_k.weight"), {kv, d}, &kMatrix, true, &L::wk},
      {blk(l, "attn_v.weight"), {kv, d}, &kMatrix, true, &L::wv},
      {blk(l, "attn_output.weight"), {d, q}, &kMatrix, true, &L::wo},
      {blk(l, "ffn_norm.weight"), {d}, &kVector, true, &L::ffn_norm},
      {blk(l, "ffn_gate.weight"), {ffn, d}, &kMatrix, true, &L::gate},
      {blk(l, "ffn_up.weight"), {ffn, d}, &kMatrix, true, &L::up},
      {blk(l, "ffn_down.weight"), {d, ffn}, &kMatrix, true, &L::down},
      {blk(l, "altup_predict_coef.weight"), {hp.K, hp.K}, &kVector, coefs, &L::predict},
      {blk(l, "altup_correct_coef.weight"), {hp.K}, &kVector, coefs, &L::correct},
  };
}

std::vector<WeightSpec> altup_weight_list(const AltUpHParams& hp) {
  std::vector<WeightSpec> specs;
  append_specs(altup_global_rows(hp), &specs);
  for (int64_t l = 0; l < hp.n_layers; ++l) append_specs(altup_layer_rows(hp, l), &specs);
  return specs;
}

Result<std::unique_ptr<AltUpModel>> AltUpModel::load(const GgufFile& f, std::string_view arch) {
  auto hp = AltUpHParams::from_gguf(f, arch);
  if (!hp) return hp.error();
  // Checked before the weight list is built: its length follows block_count.
  if (const int64_t held = layers_in_file(f); held != hp->n_layers)
    return make_error(std::string(arch) + ".block_count = " + std::to_string(hp->n_layers) +
                      " but the file holds tensors for " + std::to_string(held) + " layers (blk.N.* tensors)");
  auto w = bind_weights(f, altup_weight_list(*hp));
  if (!w) return w.error();
  if (!w->unused.empty())
    return make_error("tensor " + w->unused.front() + " is not part of the " + std::string(arch) + " architecture" +
                      (w->unused.size() > 1 ? " (and " + std::to_string(w->unused.size() - 1) + " more)" : "") +
                      "; refusing a file that may need math this runtime does not do");
  std::unique_ptr<AltUpModel> m(new AltUpModel());
  m->arch_ = std::string(arch);
  m->hp_ = *hp;
  m->bound_ = std::move(*w);
  bind_rows(m->bound_, altup_global_rows(m->hp_), &m->w_);
  m->w_.layers.resize(static_cast<size_t>(m->hp_.n_layers));
  for (int64_t l = 0; l < m->hp_.n_layers; ++l)
    bind_rows(m->bound_, altup_layer_rows(m->hp_, l), &m->w_.layers[static_cast<size_t>(l)]);
  return m;
}

uint64_t AltUpModel::row_lookup_bytes() const {
  if (hp_.tied) return 0;
  auto bytes = tensor_bytes(w_.embed.view->dtype, w_.embed.view->shape);
  return bytes ? *bytes : 0;
}

std::vector<StateSpec> AltUpModel::state_specs(int64_t ctx, int64_t /*max_tokens*/) const {
  std::vector<StateSpec> s;
  for (int64_t l = 0; l < hp_.n_layers; ++l) {
    s.push_back({"kcache-" + std::to_string(l), {hp_.n_kv_heads, ctx, hp_.head_dim}});
    s.push_back({"vcache-" + std::to_string(l), {hp_.n_kv_heads, ctx, hp_.head_dim}});
  }
  return s;
}

// The forward pass of altup.md: the K-block ring, one transformer layer per step on the active
// block, then predict and correct keep every block current.
ForwardGraph AltUpModel::build(Graph& g, int64_t T, int64_t ctx, int64_t max_tokens, bool all_logits) const {
  const AltUpHParams& hp = hp_;
  const int64_t d = hp.d;
  Builder b(g);
  ForwardGraph io;
  io.ids = b.input("ids", DType::I32, {T});
  io.pos = b.input("pos", DType::I32, {T});
  for (const StateSpec& s : state_specs(ctx, max_tokens)) io.states.push_back(b.state(s.name, s.shape));
  const AttentionShape attn{hp.n_heads, hp.n_kv_heads, hp.head_dim, 1.0f / std::sqrt(static_cast<float>(hp.head_dim)),
                            hp.rope_pairs_adjacent};

  // Prologue: embed ([T, K·d] widened, [T, d] recycled), then spread over the ring [K, T, d].
  TensorId ring = b.altup_spread("altup_spread", b.embedding("embed", w_.embed, io.ids), hp.K, d);
  // When only the last token's logits are wanted, the last layer stores k and v for every
  // token (the cache needs them) but computes the rest for the last token alone: no later
  // layer reads the other rows. Tr: the tokens the ring holds.
  const bool last_only = !all_logits && T > 1;
  int64_t Tr = T;

  for (int64_t l = 0; l < hp.n_layers; ++l) {
    b.layer(static_cast<int>(l));
    const AltUpLayerWeights& L = w_.layers[static_cast<size_t>(l)];
    const LayerConfig& cfg = hp.layers[static_cast<size_t>(l)];
    const int j = hp.active_block(l);
    const bool cut = last_only && l == hp.n_layers - 1;
    // y = Layer_l(x_j): the layer sees the active block before predict rewrites the ring.
    const TensorId xj = b.view("x_active", ring, {T, d}, j * T * d);  // [T, d]
    const KvCache cache{io.states[static_cast<size_t>(2 * l)], io.states[static_cast<size_t>(2 * l + 1)]};
    const TensorId att = attention_block(b, b.rms_norm("attn_norm", xj, L.attn_norm, hp.eps),
                                         {L.wq, L.wk, L.wv, L.wo, {}, {}}, attn, cfg, io.pos, cache,
                                         cut ? 1 : 0);  // [Tq, d]
    const TensorId xr = cut ? b.view("x_active_last", ring, {1, d}, j * T * d + (T - 1) * d) : xj;
    const TensorId h = b.add("attn_residual", xr, att);
    const TensorId ffn = gated_ffn(b, b.rms_norm("ffn_norm", h, L.ffn_norm, hp.eps), L.gate, L.up, L.down, hp.act, cfg);
    const TensorId y = b.add("ffn_residual", h, ffn);  // [Tq, d]
    if (cut) {
      ring = b.slice_axis1("ring_last_token", ring, T - 1, 1);  // [K, 1, d]
      Tr = 1;
    }
    if (L.predict) {
      // predict: x̂ = P x over the whole ring, in place; correct: x̂_i += g_i (y − x̂_j).
      // (Also for K = 1 when the file has coefficients: they are part of the model.)
      const TensorId predicted = b.altup_predict("altup_predict", ring, L.predict);
      b.altup_correct("altup_correct", predicted, y, L.correct, j);
    } else {
      // Dense without coefficients (P = [[1]], g = [1]): the one block becomes the layer's output.
      b.copy_into("copy_block", y, b.view("ring_dense", ring, {Tr, d}));
    }
  }
  b.layer(-1);

  // Epilogue: combine the blocks (sum or side by side), keep the rows whose logits are
  // wanted, norm, unembed.
  const TensorId hcat = b.altup_collapse("altup_collapse", ring, hp.out_width());  // [Tr, out]
  const TensorId rows =
      all_logits || Tr == 1 ? hcat : b.view("last_token", hcat, {1, hp.out_width()}, (Tr - 1) * hp.out_width());
  const TensorId hn = b.rms_norm("output_norm", rows, w_.output_norm, hp.eps);
  io.logits = b.matmul("output", hn, hp.tied ? w_.embed : w_.output);  // [rows, V]
  b.output(io.logits);
  return io;
}

}  // namespace altup

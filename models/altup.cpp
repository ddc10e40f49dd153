#include <algorithm>
#include <cmath>
#include <cstdio>

#include "models/altup.h"

#include "ops/altup_mix.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"

namespace altup {

namespace {
const std::vector<DType> kMatrix = {DType::F32, DType::F16, DType::BF16};
const std::vector<DType> kTable = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};
const std::vector<DType> kVector = {DType::F32};

std::string blk(int64_t l, const char* name) { return "blk." + std::to_string(l) + "." + name; }
}  // namespace

// Every hyper-parameter is checked for its range here, and against the others, before a
// weight list is built or anything is allocated: a file whose numbers do not fit together is
// refused with a message naming the key and its value (tests/test_model_validation.cpp).
Result<AltUpHParams> AltUpHParams::from_gguf(const GgufFile& f, std::string_view arch) {
  AltUpHParams hp;
  const std::string a(arch);
  auto key = [&](const char* k) { return a + "." + k; };
  // An integer key in [lo, hi].
  auto count = [&](const char* k, int64_t lo, int64_t hi, int64_t* out) -> Status {
    auto v = f.get_count(key(k));
    if (!v) return v.error();
    if (*v < static_cast<uint64_t>(lo) || *v > static_cast<uint64_t>(hi))
      return make_error("key " + key(k) + " = " + std::to_string(*v) + " is out of range [" + std::to_string(lo) +
                        ", " + std::to_string(hi) + "]");
    *out = static_cast<int64_t>(*v);
    return {};
  };
  auto optional_count = [&](const char* k, int64_t lo, int64_t hi, int64_t* out) -> Status {
    return f.find(key(k)) ? count(k, lo, hi, out) : Status{};
  };
  // A float key that must be finite and > 0 (and <= hi).
  auto positive = [&](const char* k, double hi, float* out) -> Status {
    auto v = f.get_f32(key(k));
    if (!v) return v.error();
    if (!(std::isfinite(*v) && *v > 0 && *v <= hi)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", static_cast<double>(*v));
      return make_error("key " + key(k) + " = " + buf + " must be a finite number in (0, " +
                        (hi == 1 ? std::string("1") : std::string("inf")) + "]");
    }
    *out = *v;
    return {};
  };
  ALTUP_TRY(count("embedding_length", 1, kMaxWidth, &hp.d));
  ALTUP_TRY(count("block_count", 1, kMaxLayers, &hp.n_layers));
  ALTUP_TRY(count("feed_forward_length", 1, kMaxWidth * 16, &hp.ffn));
  ALTUP_TRY(count("attention.head_count", 1, kMaxHeads, &hp.n_heads));
  ALTUP_TRY(count("context_length", 1, kMaxContext, &hp.ctx));
  hp.n_kv_heads = hp.n_heads;
  ALTUP_TRY(optional_count("attention.head_count_kv", 1, kMaxHeads, &hp.n_kv_heads));
  if (hp.n_kv_heads > hp.n_heads || hp.n_heads % hp.n_kv_heads)
    return make_error(key("attention.head_count") + " = " + std::to_string(hp.n_heads) + " query heads cannot share " +
                      key("attention.head_count_kv") + " = " + std::to_string(hp.n_kv_heads) + " KV heads evenly");
  if (f.find(key("attention.key_length"))) {
    ALTUP_TRY(count("attention.key_length", 1, kMaxHeadDim, &hp.head_dim));
  } else {
    if (hp.d % hp.n_heads)
      return make_error(key("embedding_length") + " = " + std::to_string(hp.d) + " is not a multiple of " +
                        key("attention.head_count") + " = " + std::to_string(hp.n_heads) + " (and no " +
                        key("attention.key_length") + " gives the head size)");
    hp.head_dim = hp.d / hp.n_heads;
  }
  if (hp.head_dim % 2)
    return make_error("head size " + std::to_string(hp.head_dim) + " is odd; RoPE rotates pairs of values");
  int64_t value_len = hp.head_dim;
  ALTUP_TRY(optional_count("attention.value_length", 1, kMaxHeadDim, &value_len));
  if (value_len != hp.head_dim)
    return make_error(key("attention.value_length") + " = " + std::to_string(value_len) +
                      " differs from the key length " + std::to_string(hp.head_dim) +
                      " (this runtime needs them equal)");
  ALTUP_TRY(positive("attention.layer_norm_rms_epsilon", 1, &hp.eps));
  if (f.find(key("rope.freq_base"))) ALTUP_TRY(positive("rope.freq_base", INFINITY, &hp.rope_theta));
  hp.window = 0;
  ALTUP_TRY(optional_count("attention.sliding_window", 0, kMaxContext, &hp.window));

  auto tokens = f.get_array("tokenizer.ggml.tokens", GgufType::STRING);
  hp.vocab = tokens ? static_cast<int64_t>((*tokens)->count) : 0;
  if (f.find(key("vocab_size"))) {
    ALTUP_TRY(count("vocab_size", 1, kMaxVocab, &hp.vocab));
    if (tokens && static_cast<int64_t>((*tokens)->count) != hp.vocab)
      return make_error(key("vocab_size") + " = " + std::to_string(hp.vocab) + " but the tokenizer has " +
                        std::to_string((*tokens)->count) + " tokens");
  }
  if (hp.vocab <= 0 || hp.vocab > kMaxVocab)
    return make_error("the vocabulary size " + std::to_string(hp.vocab) + " is unknown or out of range (no " +
                      key("vocab_size") + ", and tokenizer.ggml.tokens gives none in [1, " + std::to_string(kMaxVocab) +
                      "])");
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
  return hp;
}

int64_t layers_in_file(const GgufFile& f) {
  int64_t n = 0;
  for (const auto& t : f.tensors()) {
    std::string_view name = t.name;
    if (name.substr(0, 4) != "blk.") continue;
    name.remove_prefix(4);
    int64_t l = 0;
    size_t k = 0;
    while (k < name.size() && k < 10 && name[k] >= '0' && name[k] <= '9') l = l * 10 + (name[k++] - '0');
    if (k > 0 && k < name.size() && name[k] == '.') n = std::max(n, l + 1);
  }
  return n;
}

std::vector<WeightSpec> altup_weight_list(const AltUpHParams& hp) {
  const int64_t q = hp.n_heads * hp.head_dim, kv = hp.n_kv_heads * hp.head_dim;
  std::vector<WeightSpec> w = {
      {"token_embd.weight", {hp.vocab, hp.embed_width()}, hp.tied ? kMatrix : kTable, true},
      {"output_norm.weight", {hp.out_width()}, kVector, true},
  };
  if (!hp.tied) w.push_back({"output.weight", {hp.vocab, hp.out_width()}, kMatrix, true});
  for (int64_t l = 0; l < hp.n_layers; ++l) {
    w.push_back({blk(l, "attn_norm.weight"), {hp.d}, kVector, true});
    w.push_back({blk(l, "attn_q.weight"), {q, hp.d}, kMatrix, true});
    w.push_back({blk(l, "attn_k.weight"), {kv, hp.d}, kMatrix, true});
    w.push_back({blk(l, "attn_v.weight"), {kv, hp.d}, kMatrix, true});
    w.push_back({blk(l, "attn_output.weight"), {hp.d, q}, kMatrix, true});
    w.push_back({blk(l, "ffn_norm.weight"), {hp.d}, kVector, true});
    w.push_back({blk(l, "ffn_gate.weight"), {hp.ffn, hp.d}, kMatrix, true});
    w.push_back({blk(l, "ffn_up.weight"), {hp.ffn, hp.d}, kMatrix, true});
    w.push_back({blk(l, "ffn_down.weight"), {hp.d, hp.ffn}, kMatrix, true});
    // A dense K = 1 model may omit its AltUp coefficients (then predict = [[1]], correct = [1]).
    const bool need = hp.K > 1;
    w.push_back({blk(l, "altup_predict_coef.weight"), {hp.K, hp.K}, kVector, need});
    w.push_back({blk(l, "altup_correct_coef.weight"), {hp.K}, kVector, need});
  }
  return w;
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
  m->w_ = std::move(*w);
  return m;
}

std::vector<StateSpec> AltUpModel::state_specs(int64_t ctx) const {
  std::vector<StateSpec> s;
  for (int64_t l = 0; l < hp_.n_layers; ++l) {
    s.push_back({"kcache-" + std::to_string(l), {hp_.n_kv_heads, ctx, hp_.head_dim}});
    s.push_back({"vcache-" + std::to_string(l), {hp_.n_kv_heads, ctx, hp_.head_dim}});
  }
  return s;
}

ForwardGraph AltUpModel::build(Graph& g, int64_t T, int64_t ctx, bool all_logits) const {
  const AltUpHParams& hp = hp_;
  const int64_t d = hp.d, H = hp.n_heads, Hkv = hp.n_kv_heads, hd = hp.head_dim;
  const DType f32 = DType::F32;
  ForwardGraph io;
  auto weight = [&](const std::string& name) { return g.add_weight(name, *w_.find(name)); };
  const ops::RmsNormParams eps{hp.eps};

  io.ids = g.add_input("ids", DType::I32, {T});
  io.pos = g.add_input("pos", DType::I32, {T});
  for (const StateSpec& s : state_specs(ctx)) io.states.push_back(g.add_state(s.name, f32, s.shape));

  // Prologue: embed, then spread over the ring of K blocks [K, T, d].
  const TensorId e =
      g.add_node(&ops::kEmbedding, {weight("token_embd.weight"), io.ids}, "embed", -1, f32, {T, hp.embed_width()});
  const TensorId ring = g.add_node(&ops::kAltupSpread, {e}, "altup_spread", -1, f32, {hp.K, T, d});
  auto ring_view = [&](const std::string& name) { return g.add_view(name, ring, 0, f32, {hp.K, T, d}); };

  for (int64_t l = 0; l < hp.n_layers; ++l) {
    const int il = static_cast<int>(l);
    const int j = hp.active_block(l);
    const std::string L = "-" + std::to_string(l);
    // y = Layer_l(x_j): the layer sees the input block, before predict rewrites the ring.
    const TensorId xj = g.add_view("x_active" + L, ring, static_cast<uint64_t>(j * T * d * 4), f32, {T, d});
    const TensorId n1 =
        g.add_node(&ops::kRmsNorm, {xj, weight(blk(l, "attn_norm.weight"))}, "attn_norm", il, f32, {T, d}, eps);
    const TensorId q = g.add_node(&ops::kMatMul, {n1, weight(blk(l, "attn_q.weight"))}, "attn_q", il, f32, {T, H * hd});
    const TensorId k =
        g.add_node(&ops::kMatMul, {n1, weight(blk(l, "attn_k.weight"))}, "attn_k", il, f32, {T, Hkv * hd});
    const TensorId v =
        g.add_node(&ops::kMatMul, {n1, weight(blk(l, "attn_v.weight"))}, "attn_v", il, f32, {T, Hkv * hd});
    const TensorId q3 = g.add_view("q_heads" + L, q, 0, f32, {T, H, hd});
    const TensorId k3 = g.add_view("k_heads" + L, k, 0, f32, {T, Hkv, hd});
    const TensorId v3 = g.add_view("v_heads" + L, v, 0, f32, {T, Hkv, hd});
    const ops::RopeParams rope{hp.rope_theta, hp.rope_pairs_adjacent};
    g.add_node_into(&ops::kRope, {q3, io.pos}, q3, "rope_q", il, rope);
    g.add_node_into(&ops::kRope, {k3, io.pos}, k3, "rope_k", il, rope);
    const TensorId kc = io.states[static_cast<size_t>(2 * l)], vc = io.states[static_cast<size_t>(2 * l + 1)];
    g.add_node_into(&ops::kKvStore, {k3, io.pos}, kc, "k_store", il);
    g.add_node_into(&ops::kKvStore, {v3, io.pos}, vc, "v_store", il);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const TensorId att = g.add_node(&ops::kAttention, {q3, kc, vc, io.pos}, "attention", il, f32, {T, H, hd},
                                    ops::AttentionParams{scale, hp.window});
    const TensorId att2 = g.add_view("attn_heads_joined" + L, att, 0, f32, {T, H * hd});
    const TensorId o =
        g.add_node(&ops::kMatMul, {att2, weight(blk(l, "attn_output.weight"))}, "attn_output", il, f32, {T, d});
    const TensorId h = g.add_node(&ops::kAdd, {xj, o}, "attn_residual", il, f32, {T, d});
    const TensorId n2 =
        g.add_node(&ops::kRmsNorm, {h, weight(blk(l, "ffn_norm.weight"))}, "ffn_norm", il, f32, {T, d}, eps);
    const TensorId gate =
        g.add_node(&ops::kMatMul, {n2, weight(blk(l, "ffn_gate.weight"))}, "ffn_gate", il, f32, {T, hp.ffn});
    const TensorId up =
        g.add_node(&ops::kMatMul, {n2, weight(blk(l, "ffn_up.weight"))}, "ffn_up", il, f32, {T, hp.ffn});
    const TensorId act = g.add_node(&ops::kGlu, {gate, up}, "ffn_act", il, f32, {T, hp.ffn}, ops::ActParams{hp.act});
    const TensorId down =
        g.add_node(&ops::kMatMul, {act, weight(blk(l, "ffn_down.weight"))}, "ffn_down", il, f32, {T, d});
    const TensorId y = g.add_node(&ops::kAdd, {h, down}, "ffn_residual", il, f32, {T, d});
    if (w_.find(blk(l, "altup_predict_coef.weight"))) {
      // predict: xhat = P x over the whole ring, in place; correct: xhat_i += g_i (y - xhat_j).
      // (Also for K = 1 when the file has coefficients: they are part of the model.)
      const TensorId pred = ring_view("ring_predicted" + L);
      g.add_node_into(&ops::kAltupPredict, {ring, weight(blk(l, "altup_predict_coef.weight"))}, pred, "altup_predict",
                      il);
      const TensorId corr = ring_view("ring_corrected" + L);
      g.add_node_into(&ops::kAltupCorrect, {pred, y, weight(blk(l, "altup_correct_coef.weight"))}, corr,
                      "altup_correct", il, ops::AltupCorrectParams{j});
    } else {
      // Dense without coefficients (P = [[1]], g = [1]): the one block becomes the layer's output.
      g.add_node_into(&ops::kScale, {y}, g.add_view("ring_dense" + L, ring, 0, f32, {T, d}), "copy_block", il,
                      ops::ScaleParams{1.0f});
    }
  }

  // Epilogue: combine the blocks, keep the rows whose logits are wanted, norm, unembed.
  const TensorId hcat = g.add_node(&ops::kAltupCollapse, {ring}, "altup_collapse", -1, f32, {T, hp.out_width()});
  const int64_t rows = all_logits ? T : 1;
  const TensorId hrows = all_logits
                             ? hcat
                             : g.add_view("last_token", hcat, static_cast<uint64_t>((T - 1) * hp.out_width() * 4), f32,
                                          {1, hp.out_width()});
  const TensorId hn = g.add_node(&ops::kRmsNorm, {hrows, weight("output_norm.weight")}, "output_norm", -1, f32,
                                 {rows, hp.out_width()}, eps);
  io.logits = g.add_node(&ops::kMatMul, {hn, weight(hp.tied ? "token_embd.weight" : "output.weight")}, "output", -1,
                         f32, {rows, hp.vocab});
  g.mark_output(io.logits);
  return io;
}

}  // namespace altup

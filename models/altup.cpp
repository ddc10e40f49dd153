#include <cmath>

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

Result<AltUpHParams> AltUpHParams::from_gguf(const GgufFile& f, std::string_view arch) {
  AltUpHParams hp;
  const std::string a(arch);
  auto count = [&](const std::string& key, int64_t* out) -> Status {
    auto v = f.get_count(a + "." + key);
    if (!v) return v.error();
    if (*v == 0 || *v > (1ull << 31))
      return make_error("key " + a + "." + key + " = " + std::to_string(*v) + " is out of range");
    *out = static_cast<int64_t>(*v);
    return {};
  };
  ALTUP_TRY(count("embedding_length", &hp.d));
  ALTUP_TRY(count("block_count", &hp.n_layers));
  ALTUP_TRY(count("feed_forward_length", &hp.ffn));
  ALTUP_TRY(count("attention.head_count", &hp.n_heads));
  ALTUP_TRY(count("context_length", &hp.ctx));
  hp.n_kv_heads = hp.n_heads;
  if (f.find(a + ".attention.head_count_kv")) ALTUP_TRY(count("attention.head_count_kv", &hp.n_kv_heads));
  hp.head_dim = hp.d / hp.n_heads;
  if (f.find(a + ".attention.key_length")) ALTUP_TRY(count("attention.key_length", &hp.head_dim));
  if (hp.n_heads % hp.n_kv_heads)
    return make_error(std::to_string(hp.n_heads) + " heads cannot share " + std::to_string(hp.n_kv_heads) +
                      " KV heads");
  if (hp.head_dim % 2) return make_error("head size " + std::to_string(hp.head_dim) + " is odd; RoPE needs pairs");
  auto eps = f.get_f32(a + ".attention.layer_norm_rms_epsilon");
  if (!eps) return eps.error();
  hp.eps = *eps;
  if (f.find(a + ".rope.freq_base")) {
    auto th = f.get_f32(a + ".rope.freq_base");
    if (!th) return th.error();
    hp.rope_theta = *th;
  }
  if (f.find(a + ".attention.sliding_window")) {
    auto w = f.get_count(a + ".attention.sliding_window");
    if (!w) return w.error();
    hp.window = static_cast<int64_t>(*w);
  }
  auto tokens = f.get_array("tokenizer.ggml.tokens", GgufType::STRING);
  hp.vocab = tokens ? static_cast<int64_t>((*tokens)->count) : 0;
  if (f.find(a + ".vocab_size")) {
    auto v = f.get_count(a + ".vocab_size");
    if (!v) return v.error();
    hp.vocab = static_cast<int64_t>(*v);
  }
  if (hp.vocab <= 0)
    return make_error("the vocabulary size is unknown (no " + a + ".vocab_size and no tokenizer.ggml.tokens)");
  if (arch == "altup") {
    int64_t K;
    ALTUP_TRY(count("altup.num_inputs", &K));
    if (K > ops::kMaxAltupBlocks)
      return make_error("altup.num_inputs " + std::to_string(K) + " is more than " +
                        std::to_string(ops::kMaxAltupBlocks));
    hp.K = static_cast<int>(K);
    auto alt = f.get_bool(a + ".altup.alternating");
    if (!alt) return alt.error();
    hp.alternating = *alt;
    auto emb = f.get_string(a + ".altup.embedding");
    if (!emb) return emb.error();
    if (*emb != "widened" && *emb != "recycled")
      return make_error("altup.embedding '" + std::string(*emb) + "' is neither widened nor recycled");
    hp.widened = *emb == "widened";
    auto out = f.get_string(a + ".altup.output");
    if (!out) return out.error();
    if (*out != "sum" && *out != "concat")
      return make_error("altup.output '" + std::string(*out) + "' is neither sum nor concat");
    hp.concat_out = *out == "concat";
    auto act = f.get_string(a + ".ffn_activation");
    if (!act) return act.error();
    if (*act == "swiglu")
      hp.act = ops::Act::Silu;
    else if (*act == "geglu")
      hp.act = ops::Act::GeluTanh;
    else
      return make_error("ffn_activation '" + std::string(*act) + "' is neither swiglu nor geglu");
    auto tie = f.get_bool(a + ".tie_word_embeddings");
    if (!tie) return tie.error();
    hp.tied = *tie;
  } else {
    hp.tied = f.tensor("output.weight") == nullptr;  // llama.cpp omits output.weight when tied
    hp.rope_pairs_adjacent = true;                   // llama.cpp's converter permutes q / k for it
  }
  if (hp.tied && hp.embed_width() != hp.out_width())
    return make_error("tied embeddings need equal embedding and output widths");
  return hp;
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
  auto w = bind_weights(f, altup_weight_list(*hp));
  if (!w) return w.error();
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
  auto params = [](float f0, int64_t i0 = 0) {
    OpParams p;
    p.f[0] = f0;
    p.i[0] = i0;
    return p;
  };
  const OpParams eps = params(hp.eps);

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
    const OpParams rope = params(hp.rope_theta, hp.rope_pairs_adjacent ? 1 : 0);
    g.add_node_into(&ops::kRope, {q3, io.pos}, q3, "rope_q", il, rope);
    g.add_node_into(&ops::kRope, {k3, io.pos}, k3, "rope_k", il, rope);
    const TensorId kc = io.states[static_cast<size_t>(2 * l)], vc = io.states[static_cast<size_t>(2 * l + 1)];
    g.add_node_into(&ops::kKvStore, {k3, io.pos}, kc, "k_store", il);
    g.add_node_into(&ops::kKvStore, {v3, io.pos}, vc, "v_store", il);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const TensorId att =
        g.add_node(&ops::kAttention, {q3, kc, vc, io.pos}, "attention", il, f32, {T, H, hd}, params(scale, hp.window));
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
    const TensorId act =
        g.add_node(&ops::kGlu, {gate, up}, "ffn_act", il, f32, {T, hp.ffn}, params(0, static_cast<int64_t>(hp.act)));
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
                      "altup_correct", il, params(0, j));
    } else {
      // Dense without coefficients (P = [[1]], g = [1]): the one block becomes the layer's output.
      g.add_node_into(&ops::kScale, {y}, g.add_view("ring_dense" + L, ring, 0, f32, {T, d}), "copy_block", il,
                      params(1.0f));
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

#include "models/gemma3n.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ops/altup_mix.h"
#include "ops/convert.h"
#include "ops/matmul_sparse.h"
#include "runtime/mapped_file.h"
#include "runtime/threading.h"

namespace altup {

namespace {
// Matrices and tables: every dtype the matmul kernels and the row lookup take. Norm weights
// and the correct-output scale are f32, as llama.cpp writes every 1-D tensor.
// Every type matmul and the embedding lookup compute with (runtime/dtype.h).
const std::vector<DType>& kMatrix = computable_dtypes();
const std::vector<DType> kVector = {DType::F32};

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace

// Keys as llama.cpp's converter writes them (gguf-py's constants). Several numbers are not in
// the file and follow from the tensors instead: the LAuReL rank (rows of laurel_l) and the
// per-layer vocabulary (rows of per_layer_token_embd).
Result<Gemma3nHParams> Gemma3nHParams::from_gguf(const GgufFile& f) {
  Gemma3nHParams hp;
  const HParamReader r(f, "gemma3n");
  ALTUP_TRY(r.sizes(&hp.sizes));
  const int64_t L = hp.sizes.n_layers, H = hp.sizes.d;

  int64_t K = 0, active = 0;
  ALTUP_TRY(r.count("altup.num_inputs", 2, ops::kMaxAltupBlocks, &K));
  ALTUP_TRY(r.optional_count("altup.active_idx", 0, K - 1, &active));
  hp.K = static_cast<int>(K), hp.active = static_cast<int>(active);
  ALTUP_TRY(r.count("embedding_length_per_layer_input", 1, kMaxWidth, &hp.ple));
  ALTUP_TRY(r.optional_count("attention.shared_kv_layers", 0, L - 1, &hp.n_shared_kv));
  if (r.has("final_logit_softcapping")) ALTUP_TRY(r.positive("final_logit_softcapping", INFINITY, &hp.softcap));
  float rope_full = 1e6f, rope_swa = 1e4f;  // transformers' defaults
  if (r.has("rope.freq_base")) ALTUP_TRY(r.positive("rope.freq_base", INFINITY, &rope_full));
  if (r.has("rope.freq_base_swa")) ALTUP_TRY(r.positive("rope.freq_base_swa", INFINITY, &rope_swa));
  int64_t window = 0;
  ALTUP_TRY(r.optional_count("attention.sliding_window", 0, kMaxContext, &window));

  // Which layers slide: a BOOL array (true = sliding); without it, transformers' default
  // pattern (every 5th layer full).
  hp.sliding.assign(static_cast<size_t>(L), false);
  if (r.has("attention.sliding_window_pattern")) {
    auto pat = f.get_array(r.key("attention.sliding_window_pattern"), GgufType::BOOL);
    if (!pat) return pat.error();
    if (static_cast<int64_t>((*pat)->count) != L)
      return make_error(r.key("attention.sliding_window_pattern") + " has " + std::to_string((*pat)->count) +
                        " entries for " + std::to_string(L) + " layers");
    for (int64_t l = 0; l < L; ++l) hp.sliding[static_cast<size_t>(l)] = (*pat)->at<uint8_t>(static_cast<uint64_t>(l));
  } else {
    for (int64_t l = 0; l < L; ++l) hp.sliding[static_cast<size_t>(l)] = (l + 1) % 5 != 0;
  }
  if (window == 0 && std::count(hp.sliding.begin(), hp.sliding.end(), true) > 0)
    return make_error("sliding-window layers need " + r.key("attention.sliding_window") + " > 0");

  // FFN widths: one per layer (INT32 / UINT32 array) or one for all.
  std::vector<int64_t> ffn(static_cast<size_t>(L), 0);
  const GgufValue* fv = f.find(r.key("feed_forward_length"));
  if (fv && fv->type == GgufType::ARRAY) {
    if (fv->elem_type != GgufType::I32 && fv->elem_type != GgufType::U32)
      return make_error(r.key("feed_forward_length") + " is an array of " + std::string(gguf_type_name(fv->elem_type)) +
                        ", expected i32 or u32");
    if (static_cast<int64_t>(fv->count) != L)
      return make_error(r.key("feed_forward_length") + " has " + std::to_string(fv->count) + " entries for " +
                        std::to_string(L) + " layers");
    for (int64_t l = 0; l < L; ++l) {
      const int64_t v = fv->elem_type == GgufType::I32 ? fv->at<int32_t>(static_cast<uint64_t>(l))
                                                       : fv->at<uint32_t>(static_cast<uint64_t>(l));
      if (v < 1 || v > kMaxWidth * 16)
        return make_error(r.key("feed_forward_length") + "[" + std::to_string(l) + "] = " + std::to_string(v) +
                          " is out of range [1, " + std::to_string(kMaxWidth * 16) + "]");
      ffn[static_cast<size_t>(l)] = v;
    }
  } else {
    int64_t all = 0;
    ALTUP_TRY(r.count("feed_forward_length", 1, kMaxWidth * 16, &all));
    std::fill(ffn.begin(), ffn.end(), all);
  }

  // Activation sparsity: llama.cpp stores the threshold's multiplier z = icdf_normal(p) per
  // layer (-inf, or absent, for a dense layer); the op takes p = Phi(z).
  std::vector<float> sparsity(static_cast<size_t>(L), 0.0f);
  if (r.has("activation_sparsity_scale")) {
    auto sv = f.get_array(r.key("activation_sparsity_scale"), GgufType::F32);
    if (!sv) return sv.error();
    if (static_cast<int64_t>((*sv)->count) != L)
      return make_error(r.key("activation_sparsity_scale") + " has " + std::to_string((*sv)->count) + " entries for " +
                        std::to_string(L) + " layers");
    for (int64_t l = 0; l < L; ++l) {
      const float z = (*sv)->at<float>(static_cast<uint64_t>(l));
      if (z == -INFINITY) continue;
      if (!(std::fabs(z) < 8.0f))  // beyond |z| = 8, p rounds to 0 or 1
        return make_error(r.key("activation_sparsity_scale") + "[" + std::to_string(l) + "] = " + num(z) +
                          " is neither -inf (dense) nor a multiplier in (-8, 8)");
      sparsity[static_cast<size_t>(l)] = static_cast<float>(0.5 * std::erfc(-z / std::sqrt(2.0)));
    }
  }

  // Sizes the tensors state.
  const GgufTensorInfo* ple_tab = f.tensor("per_layer_token_embd.weight");
  if (!ple_tab || ple_tab->shape.ndim != 2)
    return make_error("missing or malformed tensor per_layer_token_embd.weight");
  hp.ple_rows = ple_tab->shape[0];
  if (hp.ple_rows < 1 || hp.ple_rows > hp.sizes.vocab)
    return make_error("per_layer_token_embd.weight has " + std::to_string(hp.ple_rows) +
                      " rows; expected 1 to the vocabulary's " + std::to_string(hp.sizes.vocab));
  const GgufTensorInfo* lau = f.tensor("blk.0.laurel_l.weight");
  if (!lau || lau->shape.ndim != 2) return make_error("missing or malformed tensor blk.0.laurel_l.weight");
  hp.laurel_rank = lau->shape[0];
  if (hp.laurel_rank < 1 || hp.laurel_rank > H)
    return make_error("blk.0.laurel_l.weight gives a LAuReL rank of " + std::to_string(hp.laurel_rank) +
                      "; expected 1 to " + std::to_string(H));

  // Per-layer config. A KV-shared layer reads the cache of the last non-shared layer of its
  // own kind (sliding or full), as transformers' Gemma3nTextAttention picks it.
  const int64_t first_shared = L - hp.n_shared_kv;
  hp.layers.resize(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) {
    LayerConfig& c = hp.layers[static_cast<size_t>(l)];
    const bool slide = hp.sliding[static_cast<size_t>(l)];
    c.window = slide ? window : 0;
    c.rope_base = slide ? rope_swa : rope_full;
    c.ffn = ffn[static_cast<size_t>(l)];
    c.sparsity = sparsity[static_cast<size_t>(l)];
    if (hp.n_shared_kv > 0 && l >= first_shared) {
      for (int64_t s = first_shared - 1; s >= 0 && c.kv_source < 0; --s)
        if (hp.sliding[static_cast<size_t>(s)] == slide) c.kv_source = static_cast<int>(s);
      if (c.kv_source < 0)
        return make_error("layer " + std::to_string(l) + " shares K / V (" + r.key("attention.shared_kv_layers") +
                          " = " + std::to_string(hp.n_shared_kv) + ") but no earlier layer is " +
                          (slide ? "sliding" : "full") + " attention");
    }
  }
  return hp;
}

namespace {
std::vector<WeightRow<Gemma3nWeights>> global_rows(const Gemma3nHParams& hp) {
  using W = Gemma3nWeights;
  const int64_t H = hp.sizes.d, LP = hp.sizes.n_layers * hp.ple;
  return {
      {"token_embd.weight", {hp.sizes.vocab, H}, &kMatrix, true, &W::embed},
      {"per_layer_token_embd.weight", {hp.ple_rows, LP}, &kMatrix, true, &W::ple_embed},
      {"per_layer_model_proj.weight", {LP, H}, &kMatrix, true, &W::ple_model_proj},
      {"per_layer_proj_norm.weight", {hp.ple}, &kVector, true, &W::ple_norm},
      {"altup_proj.weight", {hp.K - 1, H, H}, &kMatrix, true, &W::stream_proj},
      {"altup_unembd_proj.weight", {hp.K - 1, H, H}, &kMatrix, true, &W::stream_unproj},
      {"output_norm.weight", {H}, &kVector, true, &W::output_norm},
  };
}

std::vector<WeightRow<Gemma3nLayerWeights>> layer_rows(const Gemma3nHParams& hp, int64_t l) {
  using W = Gemma3nLayerWeights;
  const int64_t H = hp.sizes.d, K = hp.K, hd = hp.sizes.head_dim;
  const int64_t q = hp.sizes.n_heads * hd, kv = hp.sizes.n_kv_heads * hd;
  const LayerConfig& c = hp.layers[static_cast<size_t>(l)];
  const bool own_kv = c.kv_source < 0;  // shared layers may carry unused K / V tensors
  return {
      {blk(l, "altup_router_norm.weight"), {H}, &kVector, true, &W::router_norm},
      {blk(l, "altup_router.weight"), {K, H}, &kMatrix, true, &W::router},
      {blk(l, "altup_predict_coef.weight"), {K * K, K}, &kMatrix, true, &W::predict_coef},
      {blk(l, "altup_correct_coef.weight"), {K, K}, &kMatrix, true, &W::correct_coef},
      {blk(l, "altup_correct_scale.weight"), {H}, &kVector, true, &W::correct_scale},
      {blk(l, "attn_norm.weight"), {H}, &kVector, true, &W::attn_norm},
      {blk(l, "attn_q.weight"), {q, H}, &kMatrix, true, &W::wq},
      {blk(l, "attn_k.weight"), {kv, H}, &kMatrix, own_kv, &W::wk},
      {blk(l, "attn_v.weight"), {kv, H}, &kMatrix, own_kv, &W::wv},
      {blk(l, "attn_output.weight"), {H, q}, &kMatrix, true, &W::wo},
      {blk(l, "attn_q_norm.weight"), {hd}, &kVector, true, &W::q_norm},
      {blk(l, "attn_k_norm.weight"), {hd}, &kVector, own_kv, &W::k_norm},
      {blk(l, "post_attention_norm.weight"), {H}, &kVector, true, &W::post_attn_norm},
      {blk(l, "laurel_l.weight"), {hp.laurel_rank, H}, &kMatrix, true, &W::laurel_l},
      {blk(l, "laurel_r.weight"), {H, hp.laurel_rank}, &kMatrix, true, &W::laurel_r},
      {blk(l, "laurel_post_norm.weight"), {H}, &kVector, true, &W::laurel_norm},
      {blk(l, "ffn_norm.weight"), {H}, &kVector, true, &W::ffn_norm},
      {blk(l, "ffn_gate.weight"), {c.ffn, H}, &kMatrix, true, &W::gate},
      {blk(l, "ffn_up.weight"), {c.ffn, H}, &kMatrix, true, &W::up},
      {blk(l, "ffn_down.weight"), {H, c.ffn}, &kMatrix, true, &W::down},
      {blk(l, "post_ffw_norm.weight"), {H}, &kVector, true, &W::post_ffn_norm},
      {blk(l, "inp_gate.weight"), {hp.ple, H}, &kMatrix, true, &W::ple_gate},
      {blk(l, "proj.weight"), {H, hp.ple}, &kMatrix, true, &W::ple_proj},
      {blk(l, "post_norm.weight"), {H}, &kVector, true, &W::ple_norm},
  };
}

// The layer whose cache layer l reads (itself unless it shares).
int64_t cache_owner(const Gemma3nHParams& hp, int64_t l) {
  const int src = hp.layers[static_cast<size_t>(l)].kv_source;
  return src >= 0 ? src : l;
}
}  // namespace

std::vector<WeightSpec> gemma3n_weight_list(const Gemma3nHParams& hp) {
  std::vector<WeightSpec> specs;
  append_specs(global_rows(hp), &specs);
  for (int64_t l = 0; l < hp.sizes.n_layers; ++l) append_specs(layer_rows(hp, l), &specs);
  return specs;
}

// The sparse layers' down projections read their weight a row per non-zero input, so they
// need it transposed ([F, H]; ops/matmul_sparse.h): f32 / f16 / bf16 as they are, Q8_0 / Q4_0
// / IQ4_NL / Q6_K / Q4_K / Q5_K as int8 values and per-block scales (and offsets), exact; other
// quantized types keep the dense product. The file's own copy is read once here and, when the file is mapped, its
// pages are handed back: the transposed one takes its place in memory (E2B f16: 10 x 32 MiB;
// Q8_0: 10 x 18 MiB, about the file's 17 MiB).
Status Gemma3nModel::transpose_sparse_downs() {
  for (int64_t l = 0; l < hp_.sizes.n_layers; ++l) {
    Gemma3nLayerWeights& W = w_.layers[static_cast<size_t>(l)];
    const TensorView& down = *W.down.view;
    const int64_t B = ops::sparse_scale_block(down.dtype), D = down.rows(), F = down.cols();
    if (!(hp_.layers[static_cast<size_t>(l)].sparsity > 0) || !(ops::sparse_transposable(down.dtype) || B > 0))
      continue;
    auto file_bytes = tensor_bytes(down.dtype, down.shape);
    if (!file_bytes) return file_bytes.error();
    const std::string name = blk(l, "ffn_down.weight") + " (transposed)";
    if (B > 0) {
      // int8 values [F, D], then the f32 scales [F / B, D] (and as many offsets) in one allocation.
      const int64_t scale_rows = F / B * (ops::sparse_has_offsets(down.dtype) ? 2 : 1);
      const uint64_t values = static_cast<uint64_t>(F * D), scales = static_cast<uint64_t>(scale_rows * D);
      float* store = transposed_.emplace_back(new float[(values + 3) / 4 + scales]).get();
      auto* qt = reinterpret_cast<int8_t*>(store);
      float* st = store + (values + 3) / 4;
      ALTUP_TRY(ops::transpose_weight_q(down, qt, st, available_threads()));
      transposed_extra_ += static_cast<int64_t>(values + 4 * scales) - static_cast<int64_t>(*file_bytes);
      if (release_rows_) release_mapped_rows(down.data, *file_bytes, down.data, *file_bytes);
      const auto v = bound_.views.emplace(name, TensorView::contiguous(DType::I8, {F, D}, qt)).first;
      const auto sv =
          bound_.views.emplace(name + " scales", TensorView::contiguous(DType::F32, {scale_rows, D}, st)).first;
      W.down_t = {&v->first, &v->second};
      W.down_s = {&sv->first, &sv->second};
      continue;
    }
    float* store = transposed_.emplace_back(new float[(*file_bytes + 3) / 4]).get();
    ALTUP_TRY(ops::transpose_weight(down, store, available_threads()));
    if (release_rows_) release_mapped_rows(down.data, *file_bytes, down.data, *file_bytes);
    const auto it = bound_.views.emplace(name, TensorView::contiguous(down.dtype, {F, D}, store)).first;
    W.down_t = {&it->first, &it->second};
  }
  return {};
}

Result<std::unique_ptr<Gemma3nModel>> Gemma3nModel::load(const GgufFile& f) {
  auto hp = Gemma3nHParams::from_gguf(f);
  if (!hp) return hp.error();
  if (const int64_t held = layers_in_file(f); held != hp->sizes.n_layers)
    return make_error("gemma3n.block_count = " + std::to_string(hp->sizes.n_layers) +
                      " but the file holds tensors for " + std::to_string(held) + " layers (blk.N.* tensors)");
  auto w = bind_weights(f, gemma3n_weight_list(*hp));
  if (!w) return w.error();
  if (!w->unused.empty())
    return make_error("tensor " + w->unused.front() + " is not part of the gemma3n architecture" +
                      (w->unused.size() > 1 ? " (and " + std::to_string(w->unused.size() - 1) + " more)" : "") +
                      "; refusing a file that may need math this runtime does not do");
  std::unique_ptr<Gemma3nModel> m(new Gemma3nModel());
  m->hp_ = *hp;
  m->bound_ = std::move(*w);
  m->release_rows_ = f.mapped();
  const int64_t H = m->hp_.sizes.d, K = m->hp_.K;

  // The K-1 stream projections are one [K-1, H, H] tensor each way; each slice gets its own
  // view (and name, for the profile) so the matmul sees an ordinary [H, H] weight.
  for (const char* base : {"altup_proj.weight", "altup_unembd_proj.weight"}) {
    const TensorView& all = m->bound_.views.at(base);
    auto slice_bytes = tensor_bytes(all.dtype, {H, H});
    if (!slice_bytes) return slice_bytes.error();
    for (int64_t k = 0; k < K - 1; ++k)
      m->bound_.views[std::string(base) + "[" + std::to_string(k) + "]"] = TensorView::contiguous(
          all.dtype, {H, H}, static_cast<uint8_t*>(all.data) + static_cast<uint64_t>(k) * *slice_bytes);
  }
  // transformers clamps the correct coefficients to ±altup_coef_clip before every use; the
  // clamped copy (K x K floats per layer) is the one the graph reads.
  for (int64_t l = 0; l < m->hp_.sizes.n_layers; ++l) {
    TensorView& v = m->bound_.views.at(blk(l, "altup_correct_coef.weight"));
    std::vector<float>& c = m->owned_.emplace_back(static_cast<size_t>(K * K));
    for (int64_t i = 0; i < K; ++i) ALTUP_TRY(ops::row_to_f32(v, i, c.data() + i * K));
    for (float& x : c) {
      if (!std::isfinite(x)) return make_error("tensor " + blk(l, "altup_correct_coef.weight") + " holds " + num(x));
      x = std::clamp(x, -m->hp_.coef_clip, m->hp_.coef_clip);
    }
    v = TensorView::contiguous(DType::F32, {K, K}, c.data());
  }

  bind_rows(m->bound_, global_rows(m->hp_), &m->w_);
  for (int64_t k = 0; k < K - 1; ++k)
    for (auto [base, list] : {std::pair{"altup_proj.weight", &m->w_.streams_in},
                              std::pair{"altup_unembd_proj.weight", &m->w_.streams_out}}) {
      auto it = m->bound_.views.find(std::string(base) + "[" + std::to_string(k) + "]");
      list->push_back({&it->first, &it->second});
    }
  m->w_.layers.resize(static_cast<size_t>(m->hp_.sizes.n_layers));
  for (int64_t l = 0; l < m->hp_.sizes.n_layers; ++l)
    bind_rows(m->bound_, layer_rows(m->hp_, l), &m->w_.layers[static_cast<size_t>(l)]);
  ALTUP_TRY(m->transpose_sparse_downs());
  return m;
}

uint64_t Gemma3nModel::row_lookup_bytes() const {
  auto bytes = tensor_bytes(w_.ple_embed.view->dtype, w_.ple_embed.view->shape);
  return bytes ? *bytes : 0;
}

// Only layers with their own K / V have a cache: the shared ones read their source's. A
// sliding layer's cache is a ring of window + max_tokens slots when that is shorter than the
// context: enough for any call's keys, so a long context costs what the full layers need.
int64_t Gemma3nModel::cache_slots(int64_t l, int64_t ctx, int64_t max_tokens) const {
  const int64_t w = hp_.layers[static_cast<size_t>(cache_owner(hp_, l))].window;
  return w > 0 ? std::min(ctx, w + max_tokens) : ctx;
}

std::vector<StateSpec> Gemma3nModel::state_specs(int64_t ctx, int64_t max_tokens) const {
  std::vector<StateSpec> s;
  const TransformerSizes& z = hp_.sizes;
  for (int64_t l = 0; l < z.n_layers; ++l) {
    if (cache_owner(hp_, l) != l) continue;
    const int64_t slots = cache_slots(l, ctx, max_tokens);
    const int64_t rollback = slots < ctx ? slots - hp_.layers[static_cast<size_t>(l)].window : -1;
    s.push_back({"kcache-" + std::to_string(l), {z.n_kv_heads, slots, z.head_dim}, rollback});
    s.push_back({"vcache-" + std::to_string(l), {z.n_kv_heads, slots, z.head_dim}, rollback});
  }
  return s;
}

namespace {
// The router's per-token mixing weights: tanh(RMSNorm(x; w) / H · W_routerᵀ).  x [T, H] -> [T, K]
TensorId router(Builder& b, TensorId x, const Gemma3nLayerWeights& L, int64_t H, float eps) {
  const TensorId xn = b.scale("altup_router_scale", b.rms_norm("altup_router_norm", x, L.router_norm, eps),
                              1.0f / static_cast<float>(H));
  return b.softcap("altup_router_tanh", b.matmul("altup_router", xn, L.router), 1.0f);  // tanh = softcap 1
}
}  // namespace

// docs/gemma3n-architecture.md, step by step. The ring [K, T, H] holds the K streams; slot
// `active` is the one the layers run on.
ForwardGraph Gemma3nModel::build(Graph& g, int64_t T, int64_t ctx, int64_t max_tokens, bool all_logits) const {
  const Gemma3nHParams& hp = hp_;
  const int64_t H = hp.sizes.d, L = hp.sizes.n_layers, P = hp.ple, K = hp.K, a = hp.active;
  const float eps = hp.sizes.eps;
  Builder b(g);
  ForwardGraph io;
  io.ids = b.input("ids", DType::I32, {T});
  io.pos = b.input("pos", DType::I32, {T});
  std::vector<KvCache> caches(static_cast<size_t>(L));
  for (const StateSpec& s : state_specs(ctx, max_tokens)) io.states.push_back(b.state(s.name, s.shape));
  for (int64_t l = 0, next = 0; l < L; ++l)
    if (cache_owner(hp, l) == l) {
      caches[static_cast<size_t>(l)] = {io.states[static_cast<size_t>(next)], io.states[static_cast<size_t>(next + 1)]};
      next += 2;
    }
  const AttentionShape attn{hp.sizes.n_heads, hp.sizes.n_kv_heads, hp.sizes.head_dim, 1.0f, false, true, eps};
  // When only the last token's logits are wanted, no layer past the last one that writes a
  // cache (E2B: layer 19 of 30; the rest read shared K / V) has to see the other tokens: their
  // rows would only ever reach later layers' rows of the same tokens. That layer stores k and
  // v for every token, then runs on the last token alone, and so does every layer after it.
  // Tr: the tokens the ring holds; pos_r: their positions.
  int64_t last_writer = 0;
  for (int64_t l = 0; l < L; ++l)
    if (cache_owner(hp, l) == l) last_writer = l;
  const bool last_only = !all_logits && T > 1;
  int64_t Tr = T;
  TensorId pos_r = io.pos;
  auto slot = [&](const char* name, TensorId ring, int64_t k) { return b.view(name, ring, {Tr, H}, k * Tr * H); };
  auto last_row = [&](const char* name, TensorId x, int64_t offset) { return b.view(name, x, {1, H}, offset); };

  // Prologue. e = Emb[id]·√H                                                        [T, H]
  const TensorId e = b.embedding("embed", w_.embed, io.ids, std::sqrt(static_cast<float>(H)));
  // Per-layer inputs: (RMSNorm(e W_plmᵀ / √H) + EmbPL[id]·√P) / √2, laid out [L, T, P] so
  // each layer's [T, P] is one view. Token ids past the per-layer table read its row 0.
  const TensorId ple_tok = b.embedding("ple_embed", w_.ple_embed, io.ids, std::sqrt(static_cast<float>(P)),
                                       hp.sizes.vocab, release_rows_);  // [T, L·P]
  const TensorId ple_proj = b.scale("ple_model_proj_scale", b.matmul("ple_model_proj", e, w_.ple_model_proj),
                                    1.0f / std::sqrt(static_cast<float>(H)));  // [T, L·P]
  const TensorId ple_normed =
      b.rms_norm("ple_model_proj_norm", b.view("ple_proj_rows", ple_proj, {T, L, P}), w_.ple_norm, eps);  // [T, L, P]
  const TensorId ple_sum = b.add("ple_add_token", ple_normed, b.view("ple_tok_rows", ple_tok, {T, L, P}));
  const TensorId ple = b.swap_axes01("ple_by_layer", b.scale("ple_input_scale", ple_sum, 1.0f / std::sqrt(2.0f)));
  // Streams: X_0 = e, X_k = e W_up[k-1]ᵀ rescaled to e's RMS.                     [K, T, H]
  TensorId ring = b.altup_spread("altup_stream_ring", e, static_cast<int>(K), H);
  for (int64_t k = 1; k < K; ++k) {
    const TensorId up = b.matmul("altup_stream_in", e, w_.streams_in[static_cast<size_t>(k - 1)]);
    b.copy_into("altup_stream_copy", b.magnitude_match("altup_stream_match", up, e, 1e-5f), slot("stream", ring, k));
  }

  for (int64_t l = 0; l < L; ++l) {
    b.layer(static_cast<int>(l));
    const Gemma3nLayerWeights& W = w_.layers[static_cast<size_t>(l)];
    const LayerConfig& cfg = hp.layers[static_cast<size_t>(l)];
    const bool cut = last_only && l == last_writer;  // k, v for all Tr rows; the rest for the last
    // Predict: P_i = X_i + Σ_c A[i][c] X_c with A = router(X_a) W_predᵀ per token.
    const TensorId A = b.matmul("altup_predict_coefs", router(b, slot("x_active", ring, a), W, H, eps), W.predict_coef);
    TensorId pred = b.altup_predict("altup_predict", ring, A, {true});  // [K, Tr, H], in place
    const TensorId pa = slot("pred_active", pred, a);                   // [Tr, H]
    const TensorId h = b.rms_norm("attn_norm", pa, W.attn_norm, eps);
    const KvCache cache = caches[static_cast<size_t>(cache_owner(hp, l))];
    LayerConfig lc = cfg;
    lc.kv_ring = cache_slots(l, ctx, max_tokens) < ctx;
    const TensorId att = attention_block(b, h, {W.wq, W.wk, W.wv, W.wo, W.q_norm, W.k_norm}, attn, lc, pos_r, cache,
                                         cut ? 1 : 0);                                         // [Tq, H]
    const TensorId pq = cut ? last_row("pred_active_last", pred, (a * Tr + Tr - 1) * H) : pa;  // [Tq, H]
    const TensorId hq = cut ? last_row("attn_norm_last", h, (Tr - 1) * H) : h;
    if (cut) {  // from here on the ring holds the last token only
      pred = ring = b.slice_axis1("ring_last_token", pred, Tr - 1, 1);  // [K, 1, H]
      Tr = 1;
      pos_r = b.view("pos_last", io.pos, {1}, T - 1);
    }
    // LAuReL: h + RMSNorm(h W_lᵀ W_rᵀ), a rank-r residual branch beside attention.
    const TensorId lr = b.matmul("laurel_r", b.matmul("laurel_l", hq, W.laurel_l), W.laurel_r);
    const TensorId lau = b.add("laurel_residual", hq, b.rms_norm("laurel_post_norm", lr, W.laurel_norm, eps));
    const TensorId a1 = b.add("attn_residual", pq, b.rms_norm("attn_post_norm", att, W.post_attn_norm, eps));
    const TensorId a2 = b.scale("laurel_mix", b.add("laurel_add", a1, lau), 1.0f / std::sqrt(2.0f));
    const TensorId ffn = gated_ffn(b, b.rms_norm("ffn_norm", a2, W.ffn_norm, eps), W.gate, W.up, W.down,
                                   ops::Act::GeluTanh, cfg, W.down_t, W.down_s);
    const TensorId out = b.add("ffn_residual", a2, b.rms_norm("ffn_post_norm", ffn, W.post_ffn_norm, eps));  // [Tr, H]
    // Correct: X_i = P_i + (1 + c_i)(out - P_a) with c = router(out) W_corrᵀ per token.
    const TensorId c = b.matmul("altup_correct_coefs", router(b, out, W, H, eps), W.correct_coef);  // [Tr, K]
    const TensorId corr = b.altup_correct("altup_correct", pred, out, c, {static_cast<int>(a), 1.0f});
    // PLE: z = RMSNorm((gelu(X_a·s W_gateᵀ) ⊙ ple_l) W_projᵀ), added to streams 1..K-1.
    const TensorId za = b.mul("ple_scale_active", slot("corr_active", corr, a), b.weight(W.correct_scale));
    const TensorId gated =
        b.glu("ple_gate_act", b.matmul("ple_gate", za, W.ple_gate),
              b.view("ple_layer", ple, {Tr, P}, (l * T + T - Tr) * P), ops::Act::GeluTanh);  // [Tr, P]
    const TensorId z = b.rms_norm("ple_post_norm", b.matmul("ple_proj", gated, W.ple_proj), W.ple_norm, eps);
    for (int64_t k = 1; k < K; ++k) b.add_into("ple_add_stream", slot("stream", ring, k), z);
  }
  b.layer(-1);

  // Epilogue on the rows whose logits are wanted: y = mean(X_0, u_1, .., u_{K-1}) with
  // u_k = X_k W_unemb[k-1]ᵀ rescaled to X_0's RMS; logits = cap·tanh(RMSNorm(y) Embᵀ / cap).
  const int64_t rows = all_logits ? T : 1, first = all_logits ? 0 : Tr - 1;
  auto rows_of = [&](int64_t k) { return b.view("out_rows", ring, {rows, H}, k * Tr * H + first * H); };
  const TensorId x0 = rows_of(0);
  TensorId sum = x0;
  for (int64_t k = 1; k < K; ++k) {
    const TensorId u = b.matmul("altup_stream_out", rows_of(k), w_.streams_out[static_cast<size_t>(k - 1)]);
    sum = b.add("altup_stream_sum", sum, b.magnitude_match("altup_stream_out_match", u, x0, 1e-5f));
  }
  const TensorId y = b.scale("altup_stream_mean", sum, 1.0f / static_cast<float>(K));
  TensorId logits = b.matmul("output", b.rms_norm("output_norm", y, w_.output_norm, eps), w_.embed);  // [rows, V]
  if (hp.softcap > 0) logits = b.softcap("output_softcap", logits, hp.softcap);
  io.logits = logits;
  b.output(io.logits);
  return io;
}

}  // namespace altup

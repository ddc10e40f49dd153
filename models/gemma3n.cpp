#include "models/gemma3n.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "ops/altup_mix.h"
#include "ops/convert.h"
#include "ops/matmul_sparse.h"
#include "models/submodel.h"
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
    ALTUP_TRY(r.per_layer_flags("attention.sliding_window_pattern", L, &hp.sliding));
  } else {
    for (int64_t l = 0; l < L; ++l) hp.sliding[static_cast<size_t>(l)] = (l + 1) % 5 != 0;
  }
  if (window == 0 && std::count(hp.sliding.begin(), hp.sliding.end(), true) > 0)
    return make_error("sliding-window layers need " + r.key("attention.sliding_window") + " > 0");

  // FFN widths: one per layer (INT32 / UINT32 array) or one for all.
  std::vector<int64_t> ffn(static_cast<size_t>(L), 0);
  const GgufValue* fv = f.find(r.key("feed_forward_length"));
  if (fv && fv->type == GgufType::ARRAY) {
    ALTUP_TRY(r.per_layer_counts("feed_forward_length", L, 1, kMaxWidth * 16, &ffn));
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

  // The spec. A KV-shared layer reads the cache of the last non-shared layer of its own kind
  // (sliding or full), as transformers' Gemma3nTextAttention picks it.
  const int64_t first_shared = L - hp.n_shared_kv;
  hp.spec.file_layers = L;
  hp.spec.layers.resize(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) {
    LayerSpec& c = hp.spec.layers[static_cast<size_t>(l)];
    const bool slide = hp.sliding[static_cast<size_t>(l)];
    c.weights = l;
    c.window = slide ? window : 0;
    c.rope_base = slide ? rope_swa : rope_full;
    c.ffn = c.ffn_in_file = ffn[static_cast<size_t>(l)];
    c.sparsity = sparsity[static_cast<size_t>(l)];
    c.ffn_kind = c.sparsity > 0 ? FfnKind::sparse_gated : FfnKind::gated;
    if (hp.n_shared_kv > 0 && l >= first_shared) {
      c.attention = AttentionKind::shared_cache;
      for (int64_t s = first_shared - 1; s >= 0 && c.kv_source < 0; --s)
        if (hp.sliding[static_cast<size_t>(s)] == slide) c.kv_source = static_cast<int>(s);
      if (c.kv_source < 0)
        return make_error("layer " + std::to_string(l) + " shares K / V (" + r.key("attention.shared_kv_layers") +
                          " = " + std::to_string(hp.n_shared_kv) + ") but no earlier layer is " +
                          (slide ? "sliding" : "full") + " attention");
    }
  }
  ALTUP_TRY(hp.spec.check());
  return hp;
}

namespace {
WeightTable<Gemma3nWeights, Gemma3nLayerWeights> weight_table(const Gemma3nHParams& hp) {
  using G = Gemma3nWeights;
  using W = Gemma3nLayerWeights;
  const int64_t H = hp.sizes.d, K = hp.K, hd = hp.sizes.head_dim, LP = hp.spec.file_layers * hp.ple;
  const int64_t q = hp.sizes.n_heads * hd, kv = hp.sizes.n_kv_heads * hd;
  WeightTable<G, W> t;
  t.global = {
      {"token_embd.weight", {hp.sizes.vocab, H}, &kMatrix, true, &G::embed},
      {"per_layer_token_embd.weight", {hp.ple_rows, LP}, &kMatrix, true, &G::ple_embed},
      {"per_layer_model_proj.weight", {LP, H}, &kMatrix, true, &G::ple_model_proj},
      {"per_layer_proj_norm.weight", {hp.ple}, &kVector, true, &G::ple_norm},
      {"altup_proj.weight", {hp.K - 1, H, H}, &kMatrix, true, &G::stream_proj},
      {"altup_unembd_proj.weight", {hp.K - 1, H, H}, &kMatrix, true, &G::stream_unproj},
      {"output_norm.weight", {H}, &kVector, true, &G::output_norm},
  };
  for (const LayerSpec& c : hp.spec.layers) {
    const int64_t l = c.weights;
    const bool own_kv = c.attention == AttentionKind::own_cache;  // shared layers may carry unused K / V tensors
    t.layers.push_back({
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
        {blk(l, "ffn_gate.weight"), {c.ffn_in_file, H}, &kMatrix, true, &W::gate},  // bound whole, then
        {blk(l, "ffn_up.weight"), {c.ffn_in_file, H}, &kMatrix, true, &W::up},      // narrowed to c.ffn
        {blk(l, "ffn_down.weight"), {H, c.ffn_in_file}, &kMatrix, true, &W::down},  // (narrow_ffns)
        {blk(l, "post_ffw_norm.weight"), {H}, &kVector, true, &W::post_ffn_norm},
        {blk(l, "inp_gate.weight"), {hp.ple, H}, &kMatrix, true, &W::ple_gate},
        {blk(l, "proj.weight"), {H, hp.ple}, &kMatrix, true, &W::ple_proj},
        {blk(l, "post_norm.weight"), {H}, &kVector, true, &W::ple_norm},
    });
  }
  return t;
}
}  // namespace

std::vector<WeightSpec> gemma3n_weight_list(const Gemma3nHParams& hp) { return weight_table(hp).specs(); }

// The sparse layers' down projections read their weight a row per non-zero input, so they
// need it transposed ([F, H]; ops/matmul_sparse.h): f32 / f16 / bf16 as they are, Q8_0 / Q4_0
// / IQ4_NL / Q6_K / Q4_K / Q5_K as int8 values and per-block scales (and offsets), exact; other
// quantized types keep the dense product. The file's own copy is read once here and, when the file is mapped, its
// pages are handed back: the transposed one takes its place in memory (E2B f16: 10 x 32 MiB;
// Q8_0: 10 x 18 MiB, about the file's 17 MiB).
Status Gemma3nModel::transpose_sparse_downs() {
  for (int64_t i = 0; i < hp_.spec.size(); ++i) {
    Gemma3nLayerWeights& W = w_.layers[static_cast<size_t>(i)];
    const TensorView& down = *W.down.view;  // [D, F]: a MatFormer prefix of longer rows, or whole
    const int64_t B = ops::sparse_scale_block(down.dtype), D = down.rows(), F = down.cols();
    if (!transposes_down(i)) continue;
    auto file_bytes = tensor_bytes(down.dtype, down.shape);  // what a file of this width holds
    if (!file_bytes) return file_bytes.error();
    const uint64_t mapped_bytes = down.row_stride() * static_cast<uint64_t>(D);  // the rows in the file
    const std::string name = blk(hp_.spec[i].weights, "ffn_down.weight") + " (transposed)";
    if (B > 0) {
      // int8 values [F, D], then the f32 scales [F / B, D] (and as many offsets) in one allocation.
      const int64_t scale_rows = F / B * (ops::sparse_has_offsets(down.dtype) ? 2 : 1);
      const uint64_t values = static_cast<uint64_t>(F * D), scales = static_cast<uint64_t>(scale_rows * D);
      float* store = transposed_.emplace_back(new float[(values + 3) / 4 + scales]).get();
      auto* qt = reinterpret_cast<int8_t*>(store);
      float* st = store + (values + 3) / 4;
      ALTUP_TRY(ops::transpose_weight_q(down, qt, st, available_threads()));
      transposed_extra_ += static_cast<int64_t>(values + 4 * scales) - static_cast<int64_t>(*file_bytes);
      if (release_rows_) release_mapped_rows(down.data, mapped_bytes, down.data, mapped_bytes);
      const auto v = bound_.views.emplace(name, TensorView::contiguous(DType::I8, {F, D}, qt)).first;
      const auto sv =
          bound_.views.emplace(name + " scales", TensorView::contiguous(DType::F32, {scale_rows, D}, st)).first;
      W.down_t = {&v->first, &v->second};
      W.down_s = {&sv->first, &sv->second};
      continue;
    }
    float* store = transposed_.emplace_back(new float[(*file_bytes + 3) / 4]).get();
    ALTUP_TRY(ops::transpose_weight(down, store, available_threads()));
    if (release_rows_) release_mapped_rows(down.data, mapped_bytes, down.data, mapped_bytes);
    const auto it = bound_.views.emplace(name, TensorView::contiguous(down.dtype, {F, D}, store)).first;
    W.down_t = {&it->first, &it->second};
  }
  return {};
}

bool Gemma3nModel::transposes_down(int64_t i) const {
  const DType t = bound_.views.at(blk(hp_.spec[i].weights, "ffn_down.weight")).dtype;
  return hp_.spec[i].ffn_kind == FfnKind::sparse_gated &&
         (ops::sparse_transposable(t) || ops::sparse_scale_block(t) > 0);
}

// A sub-model that leaves layers out keeps the rows of per_layer_model_proj that its layers
// read (layer l's P rows at l·P, by its index in the file), as one contiguous [L'·P, H] copy:
// the product over it is then the one a file holding only those layers computes.
Status Gemma3nModel::gather_ple_proj() {
  const int64_t P = hp_.ple, L = hp_.spec.size();
  if (L == hp_.spec.file_layers) return {};
  TensorView& proj = bound_.views.at("per_layer_model_proj.weight");
  const uint64_t rows = proj.row_stride() * static_cast<uint64_t>(P), whole = proj.row_stride() * proj.rows();
  auto& copy = ple_proj_copy_.emplace_back(new uint8_t[rows * static_cast<uint64_t>(L)]);
  for (int64_t i = 0; i < L; ++i)
    std::memcpy(copy.get() + rows * static_cast<uint64_t>(i), proj.row<uint8_t>(hp_.spec[i].weights * P), rows);
  if (release_rows_) release_mapped_rows(proj.data, whole, proj.data, whole);
  bound_.total_bytes -= whole - rows * static_cast<uint64_t>(L);
  proj = TensorView::contiguous(proj.dtype, {L * P, proj.cols()}, copy.get());
  return {};
}

Result<std::unique_ptr<Gemma3nModel>> Gemma3nModel::load(const GgufFile& f, const SubmodelChoice& choice) {
  auto hp = Gemma3nHParams::from_gguf(f);
  if (!hp) return hp.error();
  std::unique_ptr<Gemma3nModel> m(new Gemma3nModel());
  m->hp_ = std::move(*hp);
  if (!choice.empty()) {
    auto sub = select_submodel(m->hp_.spec, choice);
    if (!sub) return sub.error();
    m->hp_.spec = std::move(*sub);
  }
  const auto table = weight_table(m->hp_);
  ALTUP_TRY(m->bind(f, "gemma3n", table.specs()));
  m->release_rows_ = f.mapped();
  ALTUP_TRY(m->narrow_ffns([&](int64_t i) { return m->transposes_down(i); }, f.mapped()));
  ALTUP_TRY(m->gather_ple_proj());
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
  for (const LayerSpec& layer : m->hp_.spec.layers) {
    const std::string name = blk(layer.weights, "altup_correct_coef.weight");
    TensorView& v = m->bound_.views.at(name);
    std::vector<float>& c = m->owned_.emplace_back(static_cast<size_t>(K * K));
    for (int64_t i = 0; i < K; ++i) ALTUP_TRY(ops::row_to_f32(v, i, c.data() + i * K));
    for (float& x : c) {
      if (!std::isfinite(x)) return make_error("tensor " + name + " holds " + num(x));
      x = std::clamp(x, -m->hp_.coef_clip, m->hp_.coef_clip);
    }
    v = TensorView::contiguous(DType::F32, {K, K}, c.data());
  }

  table.bind(m->bound_, &m->w_);
  for (int64_t k = 0; k < K - 1; ++k)
    for (auto [base, list] : {std::pair{"altup_proj.weight", &m->w_.streams_in},
                              std::pair{"altup_unembd_proj.weight", &m->w_.streams_out}}) {
      auto it = m->bound_.views.find(std::string(base) + "[" + std::to_string(k) + "]");
      list->push_back({&it->first, &it->second});
    }
  ALTUP_TRY(m->transpose_sparse_downs());
  return m;
}

uint64_t Gemma3nModel::row_lookup_bytes() const {
  auto bytes = tensor_bytes(w_.ple_embed.view->dtype, w_.ple_embed.view->shape);
  return bytes ? *bytes : 0;
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

// e = Emb[id]·√H; the per-layer inputs (Pass::side); the K streams (Pass::x).
TensorId Gemma3nModel::prologue(Pass& p) const {
  Builder& b = p.b;
  // L: the layers that run; Lf: the file's (more when a sub-model leaves some out).
  const int64_t H = hp_.sizes.d, L = hp_.spec.size(), Lf = hp_.spec.file_layers, P = hp_.ple, K = hp_.K, T = p.T;
  const float eps = hp_.sizes.eps;
  b.cost(Cost::embedding);
  const TensorId e = b.embedding("embed", w_.embed, p.ids, std::sqrt(static_cast<float>(H)));  // [T, H]
  // Per-layer inputs: (RMSNorm(e W_plmᵀ / √H) + EmbPL[id]·√P) / √2, laid out [L, T, P] so
  // each layer's [T, P] is one view (by the layer's place in the spec). Token ids past the
  // per-layer table read its row 0.
  b.cost(Cost::ple);
  const TensorId ple_tok = b.embedding("ple_embed", w_.ple_embed, p.ids, std::sqrt(static_cast<float>(P)),
                                       hp_.sizes.vocab, release_rows_);  // [T, Lf·P]
  const TensorId ple_proj = b.scale("ple_model_proj_scale", b.matmul("ple_model_proj", e, w_.ple_model_proj),
                                    1.0f / std::sqrt(static_cast<float>(H)));  // [T, L·P]
  const TensorId ple_normed =
      b.rms_norm("ple_model_proj_norm", b.view("ple_proj_rows", ple_proj, {T, L, P}), w_.ple_norm, eps);  // [T, L, P]
  const float root_half = 1.0f / std::sqrt(2.0f);
  if (L == Lf) {
    const TensorId ple_sum = b.add("ple_add_token", ple_normed, b.view("ple_tok_rows", ple_tok, {T, L, P}));
    p.side = b.swap_axes01("ple_by_layer", b.scale("ple_input_scale", ple_sum, root_half));  // [L, T, P]
  } else {  // a sub-model: layer i adds the token table's slice of its index in the file
    const TensorId sum = b.swap_axes01("ple_by_layer", ple_normed);                                       // [L, T, P]
    const TensorId tok = b.swap_axes01("ple_tok_by_layer", b.view("ple_tok_rows", ple_tok, {T, Lf, P}));  // [Lf, T, P]
    for (int64_t i = 0; i < L; ++i)
      b.add_into("ple_add_token", b.view("ple_layer_sum", sum, {T, P}, i * T * P),
                 b.view("ple_tok_layer", tok, {T, P}, hp_.spec[i].weights * T * P));
    p.side = b.scale("ple_input_scale", sum, root_half);
  }
  // Streams: X_0 = e, X_k = e W_up[k-1]ᵀ rescaled to e's RMS.                     [K, T, H]
  b.cost(Cost::streams);
  const TensorId ring = b.altup_spread("altup_stream_ring", e, static_cast<int>(K), H);
  for (int64_t k = 1; k < K; ++k) {
    const TensorId up = b.matmul("altup_stream_in", e, w_.streams_in[static_cast<size_t>(k - 1)]);
    b.copy_into("altup_stream_copy", b.magnitude_match("altup_stream_match", up, e, 1e-5f),
                b.view("stream", ring, {T, H}, k * T * H));
  }
  return ring;
}

void Gemma3nModel::layer(Pass& p) const {
  Builder& b = p.b;
  const int64_t H = hp_.sizes.d, P = hp_.ple, K = hp_.K, a = hp_.active, T = p.T;
  const float eps = hp_.sizes.eps;
  const Gemma3nLayerWeights& W = w_.layers[static_cast<size_t>(p.index)];
  const AttentionShape attn{hp_.sizes.n_heads, hp_.sizes.n_kv_heads, hp_.sizes.head_dim, 1.0f, false, true, eps};
  auto slot = [&](const char* name, TensorId ring, int64_t k) { return b.view(name, ring, {p.Tr, H}, k * p.Tr * H); };
  auto last_row = [&](const char* name, TensorId x, int64_t offset) { return b.view(name, x, {1, H}, offset); };

  // Predict: P_i = X_i + Σ_c A[i][c] X_c with A = router(X_a) W_predᵀ per token.
  b.cost(Cost::router);
  const TensorId routed = router(b, slot("x_active", p.x, a), W, H, eps);
  b.cost(Cost::predict);
  const TensorId A = b.matmul("altup_predict_coefs", routed, W.predict_coef);
  TensorId pred = b.altup_predict("altup_predict", p.x, A, {true});  // [K, Tr, H], in place
  const TensorId pa = slot("pred_active", pred, a);                  // [Tr, H]
  b.cost(Cost::attention);
  const TensorId h = b.rms_norm("attn_norm", pa, W.attn_norm, eps);
  const TensorId att = attention_block(b, h, {W.wq, W.wk, W.wv, W.wo, W.q_norm, W.k_norm}, attn, *p.spec, p.pos_r,
                                       p.cache, p.queries());                                      // [Tq, H]
  const TensorId pq = p.cut ? last_row("pred_active_last", pred, (a * p.Tr + p.Tr - 1) * H) : pa;  // [Tq, H]
  const TensorId hq = p.cut ? last_row("attn_norm_last", h, (p.Tr - 1) * H) : h;
  if (p.cut) pred = p.x = p.keep_last_row(pred);  // from here on the ring holds the last token only
  // LAuReL: h + RMSNorm(h W_lᵀ W_rᵀ), a rank-r residual branch beside attention.
  b.cost(Cost::laurel);
  const TensorId lr = b.matmul("laurel_r", b.matmul("laurel_l", hq, W.laurel_l), W.laurel_r);
  const TensorId lau = b.add("laurel_residual", hq, b.rms_norm("laurel_post_norm", lr, W.laurel_norm, eps));
  b.cost(Cost::attention);
  const TensorId a1 = b.add("attn_residual", pq, b.rms_norm("attn_post_norm", att, W.post_attn_norm, eps));
  b.cost(Cost::laurel);
  const TensorId a2 = b.scale("laurel_mix", b.add("laurel_add", a1, lau), 1.0f / std::sqrt(2.0f));
  b.cost(Cost::ffn);
  const TensorId ffn = gated_ffn(b, b.rms_norm("ffn_norm", a2, W.ffn_norm, eps), W.gate, W.up, W.down,
                                 ops::Act::GeluTanh, *p.spec, W.down_t, W.down_s);
  const TensorId out = b.add("ffn_residual", a2, b.rms_norm("ffn_post_norm", ffn, W.post_ffn_norm, eps));  // [Tr, H]
  // Correct: X_i = P_i + (1 + c_i)(out - P_a) with c = router(out) W_corrᵀ per token.
  b.cost(Cost::router);
  const TensorId routed_out = router(b, out, W, H, eps);
  b.cost(Cost::correct);
  const TensorId c = b.matmul("altup_correct_coefs", routed_out, W.correct_coef);  // [Tr, K]
  const TensorId corr = b.altup_correct("altup_correct", pred, out, c, {static_cast<int>(a), 1.0f});
  // PLE: z = RMSNorm((gelu(X_a·s W_gateᵀ) ⊙ ple_l) W_projᵀ), added to streams 1..K-1.
  b.cost(Cost::ple);
  const TensorId za = b.mul("ple_scale_active", slot("corr_active", corr, a), b.weight(W.correct_scale));
  const TensorId gated =
      b.glu("ple_gate_act", b.matmul("ple_gate", za, W.ple_gate),
            b.view("ple_layer", p.side, {p.Tr, P}, (p.index * T + T - p.Tr) * P), ops::Act::GeluTanh);  // [Tr, P]
  const TensorId z = b.rms_norm("ple_post_norm", b.matmul("ple_proj", gated, W.ple_proj), W.ple_norm, eps);
  for (int64_t k = 1; k < K; ++k) b.add_into("ple_add_stream", slot("stream", p.x, k), z);
}

// On the rows whose logits are wanted: y = mean(X_0, u_1, .., u_{K-1}) with u_k = X_k
// W_unemb[k-1]ᵀ rescaled to X_0's RMS; logits = cap·tanh(RMSNorm(y) Embᵀ / cap).
TensorId Gemma3nModel::epilogue(Pass& p) const {
  Builder& b = p.b;
  const int64_t H = hp_.sizes.d, K = hp_.K, Tr = p.Tr;
  const int64_t rows = p.all_logits ? p.T : 1, first = p.all_logits ? 0 : Tr - 1;
  auto rows_of = [&](int64_t k) { return b.view("out_rows", p.x, {rows, H}, k * Tr * H + first * H); };
  b.cost(Cost::streams);
  const TensorId x0 = rows_of(0);
  TensorId sum = x0;
  for (int64_t k = 1; k < K; ++k) {
    const TensorId u = b.matmul("altup_stream_out", rows_of(k), w_.streams_out[static_cast<size_t>(k - 1)]);
    sum = b.add("altup_stream_sum", sum, b.magnitude_match("altup_stream_out_match", u, x0, 1e-5f));
  }
  const TensorId y = b.scale("altup_stream_mean", sum, 1.0f / static_cast<float>(K));
  b.cost(Cost::output);
  TensorId logits = b.matmul("output", b.rms_norm("output_norm", y, w_.output_norm, hp_.sizes.eps), w_.embed);
  if (hp_.softcap > 0) logits = b.softcap("output_softcap", logits, hp_.softcap);  // [rows, V]
  return logits;
}

}  // namespace altup

#include "models/builder.h"

#include "ops/altup_mix.h"
#include "ops/convert.h"
#include "ops/layout.h"
#include "ops/matmul.h"
#include "ops/rmsnorm.h"
#include "ops/matmul_masked.h"
#include "ops/matmul_sparse.h"
#include "ops/sparsity.h"

namespace altup {

CostScope::CostScope(Builder& b, Cost c) : g_(b.graph()), previous_(g_.cost()) { g_.set_cost(c); }
CostScope::~CostScope() { g_.set_cost(previous_); }

TensorId Builder::node(const OpDef& op, std::vector<TensorId> in, const std::string& name, const Shape& out,
                       const OpParams& p) {
  return g_.add_node(&op, std::move(in), name, layer_, DType::F32, out, p);
}

TensorId Builder::view(const std::string& name, TensorId base, const Shape& shape, int64_t offset) {
  const DType dt = g_.tensor(base).dtype == DType::I32 ? DType::I32 : DType::F32;  // both 4 bytes
  return g_.add_view(tagged(name), base, static_cast<uint64_t>(offset) * sizeof(float), dt, shape);
}

TensorId Builder::embedding(const std::string& name, WeightRef table, TensorId ids, float scale, int64_t vocab,
                            bool release) {
  return node(ops::kEmbedding, {weight(table), ids}, name, {shape(ids).numel(), table.view->cols()},
              ops::EmbeddingParams{scale, vocab, release});
}

TensorId Builder::rms_norm(const std::string& name, TensorId x, WeightRef w, float eps) {
  std::vector<TensorId> in = {x};
  if (w) in.push_back(weight(w));
  return node(ops::kRmsNorm, std::move(in), name, shape(x), ops::RmsNormParams{eps});
}

void Builder::rms_norm_in_place(const std::string& name, TensorId x, WeightRef w, float eps) {
  std::vector<TensorId> in = {x};
  if (w) in.push_back(weight(w));
  g_.add_node_into(&ops::kRmsNorm, std::move(in), x, name, layer_, ops::RmsNormParams{eps});
}

TensorId Builder::matmul(const std::string& name, TensorId x, WeightRef w) {
  const Shape& s = shape(x);
  const int64_t rows = s.numel() / w.view->cols();
  return node(ops::kMatMul, {x, weight(w)}, name, {rows, w.view->rows()});
}

TensorId Builder::matmul_masked(const std::string& name, TensorId x, WeightRef w, TensorId mask, float density) {
  const Shape& s = shape(x);
  const int64_t rows = s.numel() / w.view->cols();
  return node(ops::kMatMulMasked, {x, weight(w), mask}, name, {rows, w.view->rows()}, ops::DensityParams{density});
}

TensorId Builder::matmul_sparse(const std::string& name, TensorId x, WeightRef w, WeightRef w_t, float density,
                                WeightRef w_s) {
  const Shape& s = shape(x);
  const int64_t rows = s.numel() / w.view->cols();
  std::vector<TensorId> in = {x, weight(w), weight(w_t)};
  if (w_s) in.push_back(weight(w_s));
  return node(ops::kMatMulSparse, std::move(in), name, {rows, w.view->rows()}, ops::DensityParams{density});
}

TensorId Builder::add(const std::string& name, TensorId a, TensorId b) {
  return node(ops::kAdd, {a, b}, name, shape(a));
}

void Builder::add_into(const std::string& name, TensorId dst, TensorId x) {
  g_.add_node_into(&ops::kAdd, {dst, x}, dst, name, layer_);
}

TensorId Builder::mul(const std::string& name, TensorId a, TensorId b) {
  return node(ops::kMul, {a, b}, name, shape(a));
}

TensorId Builder::scale(const std::string& name, TensorId x, float factor) {
  return node(ops::kScale, {x}, name, shape(x), ops::ScaleParams{factor});
}

TensorId Builder::softcap(const std::string& name, TensorId x, float cap) {
  return node(ops::kSoftcap, {x}, name, shape(x), ops::SoftcapParams{cap});
}

TensorId Builder::magnitude_match(const std::string& name, TensorId y, TensorId x, float eps) {
  return node(ops::kMagnitudeMatch, {y, x}, name, shape(y), ops::MagnitudeMatchParams{eps});
}

TensorId Builder::swap_axes01(const std::string& name, TensorId x) {
  const Shape& s = shape(x);
  return node(ops::kSwapAxes01, {x}, name, {s[1], s[0], s[2]});
}

TensorId Builder::slice_axis1(const std::string& name, TensorId x, int64_t start, int64_t n) {
  const Shape& s = shape(x);
  return node(ops::kSliceAxis1, {x}, name, {s[0], n, s[2]}, ops::SliceParams{start});
}

TensorId Builder::glu(const std::string& name, TensorId gate, TensorId up, ops::Act act) {
  return node(ops::kGlu, {gate, up}, name, shape(gate), ops::ActParams{act});
}

TensorId Builder::gaussian_topk(const std::string& name, TensorId x, float sparsity) {
  return node(ops::kGaussianTopK, {x}, name, shape(x), ops::GaussianTopKParams{sparsity});
}

TensorId Builder::moe_ffn(const std::string& name, TensorId x, TensorId logits, WeightRef gate, WeightRef up,
                          WeightRef down, ops::MoeParams p) {
  const Shape out = shape(x);  // a copy: adding the weights below may move the graph's tensors
  const std::vector<TensorId> in = {x, logits, weight(gate), weight(up), weight(down)};
  return node(ops::kMoeFfn, in, name, out, p);
}

void Builder::rope(const std::string& name, TensorId x, TensorId pos, ops::RopeParams p) {
  g_.add_node_into(&ops::kRope, {x, pos}, x, name, layer_, p);
}

void Builder::kv_store(const std::string& name, TensorId kv, TensorId pos, TensorId cache, bool ring) {
  g_.add_node_into(&ops::kKvStore, {kv, pos}, cache, name, layer_, ops::KvStoreParams{ring});
}

TensorId Builder::attention(const std::string& name, TensorId q, TensorId kcache, TensorId vcache, TensorId pos,
                            ops::AttentionParams p) {
  return node(ops::kAttention, {q, kcache, vcache, pos}, name, shape(q), p);
}

void Builder::copy_into(const std::string& name, TensorId x, TensorId dst) {
  g_.add_node_into(&ops::kScale, {x}, dst, name, layer_, ops::ScaleParams{1.0f});
}

TensorId Builder::altup_spread(const std::string& name, TensorId e, int K, int64_t d) {
  return node(ops::kAltupSpread, {e}, name, {K, shape(e).rows(), d});
}

TensorId Builder::altup_collapse(const std::string& name, TensorId ring, int64_t out_width) {
  return node(ops::kAltupCollapse, {ring}, name, {shape(ring)[1], out_width});
}

TensorId Builder::altup_predict(const std::string& name, TensorId ring, WeightRef coef) {
  const TensorId out = view("ring_predicted", ring, shape(ring));
  g_.add_node_into(&ops::kAltupPredict, {ring, weight(coef)}, out, name, layer_);
  return out;
}

TensorId Builder::altup_correct(const std::string& name, TensorId predicted, TensorId y, WeightRef coef, int active) {
  const TensorId out = view("ring_corrected", g_.root_of(predicted), shape(predicted));
  g_.add_node_into(&ops::kAltupCorrect, {predicted, y, weight(coef)}, out, name, layer_,
                   ops::AltupCorrectParams{active});
  return out;
}

TensorId Builder::altup_predict(const std::string& name, TensorId ring, TensorId coef, ops::AltupPredictParams p) {
  const TensorId out = view("ring_predicted", ring, shape(ring));
  g_.add_node_into(&ops::kAltupPredict, {ring, coef}, out, name, layer_, p);
  return out;
}

TensorId Builder::altup_correct(const std::string& name, TensorId predicted, TensorId y, TensorId coef,
                                ops::AltupCorrectParams p) {
  const TensorId out = view("ring_corrected", g_.root_of(predicted), shape(predicted));
  g_.add_node_into(&ops::kAltupCorrect, {predicted, y, coef}, out, name, layer_, p);
  return out;
}

TensorId Builder::seq_anchors(const std::string& name, TensorId ring, ops::SeqParams p, int64_t A) {
  const Shape s = shape(ring);
  return node(ops::kSeqAnchors, {ring}, name, {s[0], A, s[2]}, p);
}

TensorId Builder::seq_positions(const std::string& name, TensorId pos, ops::SeqParams p, int64_t A) {
  return g_.add_node(&ops::kSeqPositions, {pos}, name, layer_, DType::I32, Shape{A}, p);
}

void Builder::seq_correct(const std::string& name, TensorId ring, WeightRef coef, TensorId state, TensorId pos,
                          TensorId ya, ops::SeqParams p) {
  std::vector<TensorId> in = {ring, weight(coef), state, pos};
  if (ya != kNoTensor) in.push_back(ya);
  const TensorId out = view("ring_seq_corrected", g_.root_of(ring), shape(ring));
  g_.add_node_into(&ops::kSeqCorrect, std::move(in), out, name, layer_, p);
}

}  // namespace altup

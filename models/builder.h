// Building a forward graph so that it reads like the math: each call adds one named node,
// infers its output shape from its inputs, and tags it with the current layer. Models call
// b.matmul("attn_q", xn, L.wq) instead of spelling out the op, layer, dtype and shape.
// Weights come in as WeightRefs: a name and a view bound from the model file.
#pragma once

#include <string>

#include "ops/altup_mix.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/moe.h"
#include "ops/rope.h"
#include "ops/seq_altup.h"
#include "runtime/graph.h"

namespace altup {

// A bound weight: its name in the file and a view of its bytes (both owned by the model's
// BoundWeights). Empty for an optional weight the file does not have.
struct WeightRef {
  const std::string* name = nullptr;
  const TensorView* view = nullptr;
  explicit operator bool() const { return view != nullptr; }
};

class Builder;

// Nodes built while it lives count as `c` in profiles (runtime/graph.h Cost); the category
// before it comes back after, so blocks nest: attention_block inside a layer, and so on.
class CostScope {
 public:
  CostScope(Builder& b, Cost c);
  ~CostScope();
  CostScope(const CostScope&) = delete;
  CostScope& operator=(const CostScope&) = delete;

 private:
  Graph& g_;
  Cost previous_;
};

class Builder {
 public:
  explicit Builder(Graph& g) : g_(g) {}

  // Nodes added from now on belong to layer l (-1: outside the layer stack).
  void layer(int l) { layer_ = l; }
  const Shape& shape(TensorId t) const { return g_.tensor(t).shape; }
  Graph& graph() { return g_; }
  void cost(Cost c) { g_.set_cost(c); }  // nodes from now on count as c (CostScope for a block)
  // Nodes from now on belong to branch s of a section of branches that run at once, until
  // join() (runtime/graph.h Section).
  void branch(int s) { g_.branch(s); }
  void join() { g_.join(); }

  TensorId input(const std::string& name, DType dtype, const Shape& shape) { return g_.add_input(name, dtype, shape); }
  TensorId state(const std::string& name, const Shape& shape) { return g_.add_state(name, DType::F32, shape); }
  TensorId weight(WeightRef w) { return g_.add_weight(*w.name, *w.view); }
  // A view of `base` (f32, or i32 for a view of an i32 input such as positions), `offset`
  // elements in (named name-<layer> inside the stack).
  TensorId view(const std::string& name, TensorId base, const Shape& shape, int64_t offset = 0);

  // [T] ids -> [T, width of the table], each row times `scale`. vocab > the table's rows:
  // ids in [rows, vocab) read row 0 (ops/convert.h).
  // release: a row-lookup-only table in a file mapping (ops/convert.h EmbeddingParams).
  TensorId embedding(const std::string& name, WeightRef table, TensorId ids, float scale = 1.0f, int64_t vocab = 0,
                     bool release = false);
  // Same shape as x; w (optional) has x's innermost length.
  TensorId rms_norm(const std::string& name, TensorId x, WeightRef w, float eps);
  void rms_norm_in_place(const std::string& name, TensorId x, WeightRef w, float eps);  // x a view
  // x [rows, K] · W [N, K]ᵀ -> [rows, N]; x may be [T, H, hd] with K = H·hd.
  TensorId matmul(const std::string& name, TensorId x, WeightRef w);
  // The same where mask [rows, N] is non-zero, 0 elsewhere (ops/matmul_masked.h); density:
  // the expected fraction kept, for the profiler's estimates.
  TensorId matmul_masked(const std::string& name, TensorId x, WeightRef w, TensorId mask, float density);
  // x · Wᵀ for a mostly-zero x, reading w_t = Wᵀ a row per non-zero input (ops/matmul_sparse.h);
  // w_s: the scales of an int8 w_t (a quantized W transposed).
  TensorId matmul_sparse(const std::string& name, TensorId x, WeightRef w, WeightRef w_t, float density,
                         WeightRef w_s = {});
  TensorId add(const std::string& name, TensorId a, TensorId b);     // a's shape; b broadcast over rows
  void add_into(const std::string& name, TensorId dst, TensorId x);  // dst += x (x may be one row)
  TensorId mul(const std::string& name, TensorId a, TensorId b);     // a's shape; b broadcast over rows
  TensorId scale(const std::string& name, TensorId x, float factor);
  TensorId softcap(const std::string& name, TensorId x, float cap);  // cap · tanh(x / cap); cap 1 is tanh
  // y rescaled per row to the RMS of x (equal shapes), RMS of y floored at sqrt(eps).
  TensorId magnitude_match(const std::string& name, TensorId y, TensorId x, float eps);
  TensorId swap_axes01(const std::string& name, TensorId x);                            // [A, B, C] -> [B, A, C]
  TensorId slice_axis1(const std::string& name, TensorId x, int64_t start, int64_t n);  // [A, B, C] -> [A, n, C]
  TensorId glu(const std::string& name, TensorId gate, TensorId up, ops::Act act);      // act(gate) * up
  TensorId gaussian_topk(const std::string& name, TensorId x, float sparsity);
  // Mixture of experts (ops/moe.h): x [T, d], router logits [T, E], stacked experts -> [T, d].
  TensorId moe_ffn(const std::string& name, TensorId x, TensorId logits, WeightRef gate, WeightRef up, WeightRef down,
                   ops::MoeParams p);
  void rope(const std::string& name, TensorId x, TensorId pos, ops::RopeParams p);  // in place on [T, H, hd]
  void kv_store(const std::string& name, TensorId kv, TensorId pos, TensorId cache, bool ring = false);
  TensorId attention(const std::string& name, TensorId q, TensorId kcache, TensorId vcache, TensorId pos,
                     ops::AttentionParams p);  // q's shape
  void copy_into(const std::string& name, TensorId x, TensorId dst);

  // AltUp: the ring [K, T, d] from the embedding rows, and back.
  TensorId altup_spread(const std::string& name, TensorId e, int K, int64_t d);
  TensorId altup_collapse(const std::string& name, TensorId ring, int64_t out_width);
  // Predict the whole ring in place (P [K, K]); returns the view the result is in.
  TensorId altup_predict(const std::string& name, TensorId ring, WeightRef coef);
  // The same with coefficients computed per token (P [T, K, K]), optionally plus identity.
  TensorId altup_predict(const std::string& name, TensorId ring, TensorId coef, ops::AltupPredictParams p);
  // Correct the predicted ring in place with the layer's output y and coefficients g [K].
  TensorId altup_correct(const std::string& name, TensorId predicted, TensorId y, WeightRef coef, int active);
  // The same with g [T, K] computed per token, each plus p.g_offset.
  TensorId altup_correct(const std::string& name, TensorId predicted, TensorId y, TensorId coef,
                         ops::AltupCorrectParams p);

  // Sequence-AltUp (ops/seq_altup.h): the A anchors' rows of a ring [K, T, d] -> [K, A, d];
  // their positions, or their cache slots (p.divide), [T] -> [A] I32; every row of the ring
  // corrected in place from its anchor (ya [K, A, d]: the anchors after the layer, none when
  // A = 0; their x_a are still the ring's rows), the anchors' c rows written into `state`.
  TensorId seq_anchors(const std::string& name, TensorId ring, ops::SeqParams p, int64_t A);
  TensorId seq_positions(const std::string& name, TensorId pos, ops::SeqParams p, int64_t A);
  void seq_correct(const std::string& name, TensorId ring, WeightRef coef, TensorId state, TensorId pos, TensorId ya,
                   ops::SeqParams p);

  void output(TensorId t) { g_.mark_output(t); }

 private:
  TensorId node(const OpDef& op, std::vector<TensorId> in, const std::string& name, const Shape& out,
                const OpParams& p = {});
  std::string tagged(const std::string& name) const { return layer_ >= 0 ? name + "-" + std::to_string(layer_) : name; }

  Graph& g_;
  int layer_ = -1;
};

}  // namespace altup

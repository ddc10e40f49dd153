// A model's weights, declared once. Each architecture lists its tensors in a table of rows
// (name, shape, accepted dtypes, required, and the struct member it binds to); the same table
// gives the weight list the file is checked against (runtime/weights.h) and fills the typed
// structs the graph builder reads, so no weight name is typed twice or looked up unchecked.
#pragma once

#include <string>
#include <vector>

#include "models/builder.h"
#include "runtime/weights.h"

namespace altup {

template <class W>
struct WeightRow {
  std::string name;  // the full tensor name, e.g. "blk.3.attn_q.weight"
  Shape shape;
  const std::vector<DType>* accepted;
  bool required;
  WeightRef W::*slot;  // where the bound weight goes
};

template <class W>
void append_specs(const std::vector<WeightRow<W>>& rows, std::vector<WeightSpec>* specs) {
  for (const WeightRow<W>& r : rows) specs->push_back({r.name, r.shape, *r.accepted, r.required});
}

// Fills `into` from weights bound with (a superset of) those rows' specs. Required rows are
// present after a successful bind_weights; optional ones stay empty when absent.
template <class W>
void bind_rows(const BoundWeights& bound, const std::vector<WeightRow<W>>& rows, W* into) {
  for (const WeightRow<W>& r : rows) {
    auto it = bound.views.find(r.name);
    into->*r.slot = it == bound.views.end() ? WeightRef{} : WeightRef{&it->first, &it->second};
  }
}

// A whole model's table: the rows outside the layers, and each layer's (in the spec's order;
// each names its tensors by the layer's index in the file). W holds std::vector<L> layers.
template <class W, class L>
struct WeightTable {
  std::vector<WeightRow<W>> global;
  std::vector<std::vector<WeightRow<L>>> layers;

  std::vector<WeightSpec> specs() const {
    std::vector<WeightSpec> s;
    append_specs(global, &s);
    for (const auto& rows : layers) append_specs(rows, &s);
    return s;
  }
  void bind(const BoundWeights& bound, W* into) const {
    bind_rows(bound, global, into);
    into->layers.resize(layers.size());
    for (size_t i = 0; i < layers.size(); ++i) bind_rows(bound, layers[i], &into->layers[i]);
  }
};

// "blk.<l>.<name>", llama.cpp's per-layer tensor names.
inline std::string blk(int64_t l, const char* name) { return "blk." + std::to_string(l) + "." + name; }

// The rows of a Llama-style layer blk.<l>: self-attention (q [q, d], k / v [kv, d], output
// [d, q]) with its norm, and the FFN norm. L has the members attn_norm, wq, wk, wv, wo, ffn_norm.
template <class L>
std::vector<WeightRow<L>> attention_rows(int64_t l, int64_t d, int64_t q, int64_t kv, const std::vector<DType>* matrix,
                                         const std::vector<DType>* vector) {
  return {
      {blk(l, "attn_norm.weight"), {d}, vector, true, &L::attn_norm},
      {blk(l, "attn_q.weight"), {q, d}, matrix, true, &L::wq},
      {blk(l, "attn_k.weight"), {kv, d}, matrix, true, &L::wk},
      {blk(l, "attn_v.weight"), {kv, d}, matrix, true, &L::wv},
      {blk(l, "attn_output.weight"), {d, q}, matrix, true, &L::wo},
      {blk(l, "ffn_norm.weight"), {d}, vector, true, &L::ffn_norm},
  };
}

// The gated FFN of blk.<l>, [ffn, d] x2 and [d, ffn]: L has gate, up, down.
template <class L>
void append_ffn_rows(int64_t l, int64_t d, int64_t ffn, const std::vector<DType>* matrix,
                     std::vector<WeightRow<L>>* rows) {
  rows->push_back({blk(l, "ffn_gate.weight"), {ffn, d}, matrix, true, &L::gate});
  rows->push_back({blk(l, "ffn_up.weight"), {ffn, d}, matrix, true, &L::up});
  rows->push_back({blk(l, "ffn_down.weight"), {d, ffn}, matrix, true, &L::down});
}

}  // namespace altup

#include "runtime/graph.h"

#include <algorithm>

namespace altup {

TensorId Graph::add_input(std::string name, DType dtype, const Shape& shape) {
  tensors_.push_back({std::move(name), dtype, shape, TensorKind::Input});
  return static_cast<TensorId>(tensors_.size() - 1);
}

TensorId Graph::add_weight(std::string name, const TensorView& view) {
  TensorDesc d{std::move(name), view.dtype, view.shape, TensorKind::Weight};
  d.data = view.data;
  if (view.shape.ndim >= 2) {
    auto contiguous = row_bytes(view.dtype, static_cast<uint64_t>(view.cols()));
    if (contiguous && *contiguous != view.row_stride()) d.row_stride = view.row_stride();
  }
  tensors_.push_back(std::move(d));
  return static_cast<TensorId>(tensors_.size() - 1);
}

TensorId Graph::add_state(std::string name, DType dtype, const Shape& shape) {
  tensors_.push_back({std::move(name), dtype, shape, TensorKind::State});
  return static_cast<TensorId>(tensors_.size() - 1);
}

TensorId Graph::add_view(std::string name, TensorId base, uint64_t byte_offset, DType dtype, const Shape& shape) {
  TensorDesc d{std::move(name), dtype, shape, TensorKind::View};
  d.view_of = base;
  d.view_offset = byte_offset;
  tensors_.push_back(std::move(d));
  return static_cast<TensorId>(tensors_.size() - 1);
}

TensorId Graph::add_node(const OpDef* op, std::vector<TensorId> inputs, std::string name, int layer, DType out_dtype,
                         const Shape& out_shape, const OpParams& params) {
  std::string tname = layer >= 0 ? name + "-" + std::to_string(layer) : name;
  tensors_.push_back({std::move(tname), out_dtype, out_shape, TensorKind::Activation});
  const auto out = static_cast<TensorId>(tensors_.size() - 1);
  add_node_into(op, std::move(inputs), out, std::move(name), layer, params);
  return out;
}

void Graph::add_node_into(const OpDef* op, std::vector<TensorId> inputs, TensorId output, std::string name, int layer,
                          const OpParams& params) {
  nodes_.push_back({op, std::move(inputs), output, params, std::move(name), layer, cost_, branch_});
}

void Graph::branch(int b) {
  if (branch_ < 0) {
    const int at = static_cast<int>(nodes_.size());
    sections_.push_back({at, at, 0});
  }
  branch_ = b;
  sections_.back().branches = std::max(sections_.back().branches, b + 1);
}

void Graph::join() {
  if (branch_ < 0) return;
  sections_.back().end = static_cast<int>(nodes_.size());
  branch_ = -1;
}

const char* cost_name(Cost c) {
  switch (c) {
    case Cost::other: return "other";
    case Cost::embedding: return "embedding";
    case Cost::attention: return "attention";
    case Cost::ffn: return "ffn";
    case Cost::predict: return "predict";
    case Cost::correct: return "correct";
    case Cost::router: return "router";
    case Cost::streams: return "streams";
    case Cost::ple: return "ple";
    case Cost::laurel: return "laurel";
    case Cost::altup: return "altup";
    case Cost::cross: return "cross_attn";
    case Cost::memory: return "memory";
    case Cost::experts: return "experts";
    case Cost::output: return "output";
  }
  return "other";
}

TensorId Graph::root_of(TensorId t) const {
  // Views may be chained; validate() rejects cycles by requiring view_of < t.
  while (tensors_[t].kind == TensorKind::View) t = tensors_[t].view_of;
  return t;
}

Status Graph::validate() const {
  const auto n = static_cast<TensorId>(tensors_.size());
  auto in_range = [n](TensorId t) { return t >= 0 && t < n; };
  for (TensorId t = 0; t < n; ++t) {
    const TensorDesc& d = tensors_[t];
    if (d.kind == TensorKind::Weight && !d.data) return make_error("weight " + d.name + " has no data");
    if (d.kind != TensorKind::View) continue;
    if (!in_range(d.view_of) || d.view_of >= t)
      return make_error("view " + d.name + " must look into an earlier tensor");
    auto vb = tensor_bytes(d.dtype, d.shape);
    auto bb = tensor_bytes(tensors_[d.view_of].dtype, tensors_[d.view_of].shape);
    if (!vb || !bb || d.view_offset + *vb > *bb)
      return make_error("view " + d.name + " does not fit inside " + tensors_[d.view_of].name);
  }
  // A tensor is readable once bound (input, weight) or written by an earlier node. Writing
  // into a view also makes its base readable (the rest of the base is the writer's business).
  std::vector<bool> ready(tensors_.size(), false);
  std::vector<int> writes(tensors_.size(), 0);
  for (TensorId t = 0; t < n; ++t)
    ready[t] = tensors_[t].kind == TensorKind::Input || tensors_[t].kind == TensorKind::Weight ||
               tensors_[t].kind == TensorKind::State;
  for (const Node& node : nodes_) {
    const std::string where =
        "node " + node.name + (node.layer >= 0 ? " (layer " + std::to_string(node.layer) + ")" : "");
    if (!node.op || !node.op->run) return make_error(where + " has no op");
    for (TensorId in : node.inputs) {
      if (!in_range(in)) return make_error(where + " reads an unknown tensor id " + std::to_string(in));
      if (!ready[in] && !ready[root_of(in)])
        return make_error(where + " reads " + tensors_[in].name + " before anything writes it");
    }
    if (!in_range(node.output)) return make_error(where + " writes an unknown tensor id");
    const TensorKind k = tensors_[node.output].kind;
    if (k == TensorKind::Input || k == TensorKind::Weight)
      return make_error(where + " writes into " + tensors_[node.output].name + ", which is not an activation");
    if (k == TensorKind::Activation && ++writes[node.output] > 1)
      return make_error(where + " writes " + tensors_[node.output].name + ", which another node already wrote");
    ready[node.output] = true;
    ready[root_of(node.output)] = true;
  }
  return validate_sections();
}

// The bytes of its root a tensor covers: [lo, hi).
std::pair<uint64_t, uint64_t> Graph::byte_range(TensorId t) const {
  const auto bytes = tensor_bytes(tensors_[t].dtype, tensors_[t].shape);
  uint64_t lo = 0;
  for (TensorId v = t; tensors_[v].kind == TensorKind::View; v = tensors_[v].view_of) lo += tensors_[v].view_offset;
  return {lo, lo + (bytes ? *bytes : 0)};
}

// Branches run at once, so a branch must not touch what another writes: any two touches of
// the same root's bytes by different branches, one of them a write, are refused.
Status Graph::validate_sections() const {
  if (branch_ >= 0) return make_error("a section of branches is still open (Graph::join was not called)");
  int next = 0;  // sections are in node order and do not overlap
  for (const Section& sec : sections_) {
    if (sec.first < next || sec.end < sec.first || sec.end > static_cast<int>(nodes_.size()))
      return make_error("a section of branches covers nodes out of order");
    next = sec.end;
  }
  struct Touch {
    TensorId root;
    uint64_t lo, hi;
    int node;
    bool write;
  };
  for (size_t k = 0; k < nodes_.size(); ++k) {
    const bool inside = std::any_of(sections_.begin(), sections_.end(), [&](const Section& s) {
      return static_cast<int>(k) >= s.first && static_cast<int>(k) < s.end;
    });
    if (!inside && nodes_[k].branch >= 0)
      return make_error("node " + nodes_[k].name + " has a branch outside a section");
  }
  for (const Section& sec : sections_) {
    std::vector<Touch> touches;
    auto touch = [&](TensorId t, int k, bool write) {
      const TensorId r = root_of(t);
      if (tensors_[r].kind == TensorKind::Input || tensors_[r].kind == TensorKind::Weight) return;  // read-only
      const auto [lo, hi] = byte_range(t);
      touches.push_back({r, lo, hi, k, write});
    };
    for (int k = sec.first; k < sec.end; ++k) {
      const Node& n = nodes_[static_cast<size_t>(k)];
      if (n.branch < 0 || n.branch >= sec.branches)
        return make_error("node " + n.name + " is in a section but in none of its branches");
      for (TensorId in : n.inputs) touch(in, k, false);
      touch(n.output, k, true);
    }
    std::sort(touches.begin(), touches.end(), [](const Touch& a, const Touch& b) { return a.root < b.root; });
    for (size_t i = 0; i < touches.size(); ++i)
      for (size_t j = i + 1; j < touches.size() && touches[j].root == touches[i].root; ++j) {
        const Touch &a = touches[i], &b = touches[j];
        const Node &na = nodes_[static_cast<size_t>(a.node)], &nb = nodes_[static_cast<size_t>(b.node)];
        if (na.branch == nb.branch || !(a.write || b.write) || a.hi <= b.lo || b.hi <= a.lo) continue;
        return make_error("nodes " + na.name + " (branch " + std::to_string(na.branch) + ") and " + nb.name +
                          " (branch " + std::to_string(nb.branch) + ") both touch bytes of " + tensors_[a.root].name +
                          " and one of them writes them: branches must not share data");
      }
  }
  return {};
}

}  // namespace altup

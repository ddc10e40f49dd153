// A graph of named nodes. Building a graph is separate from running it: a model describes its
// forward pass once (tensors, ops, names, layer indices), the planner places activations in
// one arena, and the executor runs the nodes in order. Every node carries a name and a layer
// index, which is what the profiler and a tensor-dump debugger hook onto.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/error.h"
#include "runtime/tensor.h"

namespace altup {

using TensorId = int32_t;
constexpr TensorId kNoTensor = -1;

enum class TensorKind {
  Input,       // bound by the caller before each run (token ids, positions, ...)
  Weight,      // points into the mapped model file
  Activation,  // produced by a node, placed in the arena by the planner
  View,        // a window into another tensor (an AltUp ring slot, a slice); owns no memory
  State,       // caller-bound memory that lives across runs and nodes may write (KV cache)
};

struct TensorDesc {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  TensorKind kind = TensorKind::Activation;
  void* data = nullptr;          // Input / Weight / State: bound memory
  bool is_output = false;        // kept alive to the end of the run
  TensorId view_of = kNoTensor;  // View: the tensor it looks into
  uint64_t view_offset = 0;      // View: byte offset into that tensor
  // Weight: bytes from one row to the next when they are not contiguous (a MatFormer prefix
  // of longer rows, models/decoder.h); 0: contiguous.
  uint64_t row_stride = 0;
};

// Op parameters. Each op that takes any declares a small struct of them beside its OpDef
// (RmsNormParams, RopeParams, ...); a node keeps one by value, and the op reads it back by its
// type: a node carrying another op's parameters is an error the op reports, never a misread.
class OpParams {
 public:
  OpParams() = default;
  template <class P>
  OpParams(const P& p) {  // NOLINT: implicit, so a node is built with RopeParams{...} directly
    static_assert(std::is_trivially_copyable_v<P> && sizeof(P) <= kBytes, "op parameters: a small plain struct");
    std::memcpy(bytes_.data(), &p, sizeof p);
    tag_ = tag<P>();
  }
  // Copies the parameters into *out if they are of type P.
  template <class P>
  bool get(P* out) const {
    if (tag_ != tag<P>()) return false;
    std::memcpy(out, bytes_.data(), sizeof(P));
    return true;
  }
  bool empty() const { return tag_ == nullptr; }

 private:
  template <class P>
  static const void* tag() {
    static const char t = 0;  // one address per parameter type
    return &t;
  }
  static constexpr size_t kBytes = 32;
  alignas(8) std::array<unsigned char, kBytes> bytes_{};
  const void* tag_ = nullptr;
};

class Graph;
class ExecContext;
struct Node;

// An op as the executor sees it: a name and a function. Each op file defines its OpDef; the
// executor never switches over op kinds.
struct OpDef {
  const char* name;
  Status (*run)(const Node& node, ExecContext& ctx);
  // Work estimates for the profiler (may be null): floating-point operations, bytes moved.
  double (*flops)(const Node& node, const Graph& graph) = nullptr;
  double (*bytes)(const Node& node, const Graph& graph) = nullptr;
  // The same for work that depends on the inputs' values (attention: on the positions),
  // asked for each run instead of once per graph: *flops and *bytes out.
  void (*work_of_run)(const Node& node, const ExecContext& ctx, double* flops, double* bytes) = nullptr;
};

// What a node's time counts as in a profile. The model that builds a node says (Builder's
// CostScope, models/builder.h); the profiler reads it.
enum class Cost : uint8_t {
  other,
  embedding,
  attention,
  ffn,
  predict,
  correct,
  router,
  streams,
  ple,
  laurel,
  altup,
  cross,    // StagFormer's cross-attention over the previous stack's outputs
  memory,   // StagFormer: the previous stack's outputs normed, their cross-attention K / V stored
  experts,  // a mixture of experts' FFNs (its router counts as router)
  output
};
const char* cost_name(Cost c);  // "attention", ...
inline constexpr Cost kAllCosts[] = {Cost::attention, Cost::cross,   Cost::memory,    Cost::ffn,     Cost::experts,
                                     Cost::predict,   Cost::correct, Cost::router,    Cost::streams, Cost::ple,
                                     Cost::laurel,    Cost::altup,   Cost::embedding, Cost::output,  Cost::other};

struct Node {
  const OpDef* op = nullptr;
  std::vector<TensorId> inputs;
  TensorId output = kNoTensor;
  OpParams params;
  std::string name;  // e.g. "attn_norm"
  int layer = -1;    // -1 for nodes outside the layer stack
  Cost cost = Cost::other;
  int branch = -1;  // its branch in a Section, -1 outside any
};

// Nodes that may run at the same time: the nodes [first, end) form `branches` chains with no
// data between them (a StagFormer's stacks in a decode step). The executor runs each chain in
// order, the chains at once on shares of the threads (runtime/executor.h); validate() checks
// that no chain touches bytes another one writes.
struct Section {
  int first = 0, end = 0;
  int branches = 0;
};

class Graph {
 public:
  TensorId add_input(std::string name, DType dtype, const Shape& shape);
  TensorId add_weight(std::string name, const TensorView& view);
  // Persistent state bound by the caller (e.g. a layer's KV cache): readable from the start,
  // writable by nodes, never placed in the arena.
  TensorId add_state(std::string name, DType dtype, const Shape& shape);
  // A view of `base` starting `byte_offset` bytes in, with its own (contiguous) shape.
  TensorId add_view(std::string name, TensorId base, uint64_t byte_offset, DType dtype, const Shape& shape);
  // Append a node computing a new activation of the given dtype and shape; returns its id.
  TensorId add_node(const OpDef* op, std::vector<TensorId> inputs, std::string name, int layer, DType out_dtype,
                    const Shape& out_shape, const OpParams& params = {});
  // Append a node that writes into an existing tensor (e.g. a view of a ring slot).
  void add_node_into(const OpDef* op, std::vector<TensorId> inputs, TensorId output, std::string name, int layer,
                     const OpParams& params = {});
  void mark_output(TensorId t) { tensors_[t].is_output = true; }
  // Nodes added from now on belong to branch b (0, 1, ...) of a Section, opened by the first
  // call after a join(); join() closes it: nodes after it run once every branch is done.
  void branch(int b);
  void join();
  const std::vector<Section>& sections() const { return sections_; }

  // Every id in range, every input produced (or bound) before it is read, views inside
  // their base, activations written by exactly one node, sections closed, and no branch of a
  // section touching the bytes another branch writes.
  Status validate() const;

  const std::vector<TensorDesc>& tensors() const { return tensors_; }
  std::vector<TensorDesc>& tensors() { return tensors_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  // Nodes added from now on count as `c` in profiles.
  void set_cost(Cost c) { cost_ = c; }
  Cost cost() const { return cost_; }
  const TensorDesc& tensor(TensorId t) const { return tensors_[t]; }

  // The tensor that owns a view's memory (itself for non-views).
  TensorId root_of(TensorId t) const;

 private:
  Status validate_sections() const;
  std::pair<uint64_t, uint64_t> byte_range(TensorId t) const;

  std::vector<TensorDesc> tensors_;
  std::vector<Node> nodes_;
  Cost cost_ = Cost::other;
  std::vector<Section> sections_;
  int branch_ = -1;  // the branch new nodes join, -1 outside a section
};

}  // namespace altup

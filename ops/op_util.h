// Small helpers shared by the graph ops: dtype checks and row-parallel loops that stay on
// one thread when the work is too small to be worth waking another.
#pragma once

#include <initializer_list>

#include "runtime/executor.h"
#include "runtime/threading.h"

namespace altup::ops {

inline Status expect_f32(std::initializer_list<const TensorView*> ts) {
  for (const TensorView* t : ts)
    if (t->dtype != DType::F32) return make_error("expected f32 tensors, got " + std::string(dtype_name(t->dtype)));
  return {};
}

// The node's parameters, as the op's own struct.
template <class P>
Status params_of(const Node& node, P* out) {
  if (!node.params.get(out))
    return make_error(std::string(node.op ? node.op->name : "op") + ": the node does not carry this op's parameters");
  return {};
}

// Below this many elements a second thread costs more (wake-up, ~µs) than it saves.
constexpr int64_t kMinParallelElems = 1 << 14;

// fn(r0, r1) over [0, rows), threaded only when rows * cols is large enough.
template <class F>
void for_rows(int64_t rows, int64_t cols, int threads, F&& fn) {
  const int t = rows * cols >= kMinParallelElems ? threads : 1;
  parallel_for(rows, t, fn);
}

}  // namespace altup::ops

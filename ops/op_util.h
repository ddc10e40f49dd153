// Small helpers shared by the graph ops: dtype checks and row-parallel loops that stay on
// one thread when the work is too small to be worth waking another.
#pragma once

#include <algorithm>
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

// fn(r0, r1) over [0, rows), on as many threads as rows * cols of work deserves
// (runtime/threading.h threads_for).
template <class F>
void for_rows(int64_t rows, int64_t cols, int threads, F&& fn) {
  parallel_for(rows, threads_for(rows * cols, threads), fn);
}

// How many of x[0, n) are not zero, threaded when n is large: the sparse products
// (ops/matmul_masked.h, matmul_sparse.h) choose their path by it.
inline int64_t count_nonzero(const float* x, int64_t n, int threads) {
  const int nt = threads_for(n, threads);
  int64_t part[64] = {};
  const int parts = std::min(nt, 64);
  parallel_for(parts, parts, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t c = 0;
      for (int64_t i = n * t / parts; i < n * (t + 1) / parts; ++i) c += x[i] != 0.0f;
      part[t] = c;
    }
  });
  int64_t total = 0;
  for (int t = 0; t < parts; ++t) total += part[t];
  return total;
}

}  // namespace altup::ops

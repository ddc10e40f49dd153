// Large matrix products through oneDNN's matmul primitive: y[M, N] = x[M, K] · W[N, K]ᵀ, all f32,
// row-major.
// Used for prefill (many tokens), where oneDNN's blocked kernels beat a GEMV loop.
#pragma once

#include <cstdint>

#include "runtime/error.h"
#include "runtime/graph.h"

namespace altup::ops {

// Runs with `threads` OpenMP threads; call it outside any parallel region.
Status gemm_f32_dnnl(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k, int threads);

// Graph op: inputs {x [.., K], W [N, K]}, output [.., N].
extern const OpDef kMatMulDnnl;

}  // namespace altup::ops

// Small dense products C (+)= A·B in f32, row-major, for the products inside prefill
// attention (scores Q·Kᵀ with Kᵀ packed, and P·V straight from the cache). They are our own
// kernels, not oneDNN's, so a prompt of a new length creates nothing: no primitive, no plan.
// Not a graph op; ops/attention.cpp tiles its work into calls of this.
#pragma once

#include <cstdint>

namespace altup::ops::ref {
// C[i*ldc + j] = (accumulate ? C[i*ldc + j] : 0) + sum_p A[i*lda + p] * B[p*ldb + j]
// for i < m, j < n, p < k. Plain loops, summed in double: the reference every table is
// checked against.
void gemm_tile(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
               int64_t k, bool accumulate);
}  // namespace altup::ops::ref

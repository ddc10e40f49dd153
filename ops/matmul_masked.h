// Masked matrix product for sparse FFN layers (Gemma 3n's first ten): only the entries a mask
// keeps are computed,
//   y[m, r] = mask[m, r] != 0 ? sum_k x[m, k] * W[r, k] : 0,
// W row-major [N, K] in any computable dtype. After Gaussian top-k, about 95% of a gate row is
// exactly zero, and act(0) = 0 for GELU and SiLU, so the up projection's entries there are
// multiplied by zero anyway: the sparse path reads only the weight rows some token keeps
// (decode: ~5% of W) and does ~5% of the arithmetic. Each kept entry is one token's GEMV on
// one row, the same bits as matmul's GEMV path gives that entry; above a measured density
// the dense product (then masked) is faster and is taken instead.
#pragma once

#include "ops/kernels.h"
#include "ops/matmul.h"
#include "runtime/graph.h"

namespace altup::ops {

// Above this fraction of kept entries the dense product is cheaper: bench_ops
// "matmul_masked_*" (E2B's f16 shapes, 2 Zen 3 cores) put the crossover at 0.30 for one token
// and 0.20-0.25 for 512, in two runs (bench/results/bench_ops_sparse_ffn{,_run2}.jsonl).
constexpr double kMaskedDenseAbove = 0.25;

namespace ref {
// In double, from the rows decoded to f32 (runtime/dtype), for every entry the mask keeps.
void matmul_masked(const float* x, int64_t M, const TensorView& w, const float* mask, float* y);
}  // namespace ref

// path: automatic chooses by the mask's density; sparse or dense forces one (dense:
// the product, matmul's choice of kernels, then the mask). `table` as in matmul.
Status matmul_masked(const float* x, int64_t M, const TensorView& w, const float* mask, float* y, int threads,
                     SparsePath path = SparsePath::automatic, const Kernels* table = nullptr);

// Graph op: inputs {x [.., K], W [N, K], mask [.., N]}, output [.., N]; DensityParams (ops/matmul.h).
extern const OpDef kMatMulMasked;

}  // namespace altup::ops

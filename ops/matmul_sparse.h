// Matrix product with a sparse input, for the down projection of sparse FFN layers (Gemma
// 3n's first ten, where ~95% of each row of act(gate) * up is exactly zero):
//   y[m, :] = sum over f with x[m, f] != 0 of x[m, f] * Wt[f, :]
// Wt [F, D] is the down weight W [D, F] transposed (f32 / f16 / bf16, exact), so each kept
// input reads one contiguous weight row: a decode step reads ~5% of the matrix, a prefill
// does ~5% of the arithmetic. Above a measured density the ordinary product x · Wᵀ on the
// file's own W is taken instead.
#pragma once

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

// Above this fraction of non-zero inputs the dense product is cheaper: bench_ops
// "matmul_sparse_*" (E2B's f16 shapes, 2 Zen 3 cores) put the crossover at 0.30 for one token
// and 0.25-0.30 for 512, in two runs (bench/results/bench_ops_sparse_ffn{,_run2}.jsonl).
constexpr double kSparseDenseAbove = 0.25;

// Whether a weight of this dtype can be transposed exactly for matmul_sparse.
bool sparse_transposable(DType t);

// w [D, F] -> wt [F, D], same dtype (f32 / f16 / bf16); wt holds F * D elements.
Status transpose_weight(const TensorView& w, void* wt, int threads);

namespace ref {
// In double, over every input (zeros included), from Wt.
void matmul_sparse(const float* x, int64_t M, const TensorView& wt, float* y);
}  // namespace ref

// path: 0 = choose by the input's density, 1 = force the sparse path, 2 = force the dense
// product on w. `table` as in matmul.
Status matmul_sparse(const float* x, int64_t M, const TensorView& w, const TensorView& wt, float* y, int threads,
                     int path = 0, const Kernels* table = nullptr);

// Graph op: inputs {x [.., F], W [D, F], Wt [F, D]}, output [.., D]; DensityParams (ops/matmul.h).
extern const OpDef kMatMulSparse;

}  // namespace altup::ops

// Matrix product with a sparse input, for the down projection of sparse FFN layers (Gemma
// 3n's first ten, where ~95% of each row of act(gate) * up is exactly zero):
//   y[m, :] = sum over f with x[m, f] != 0 of x[m, f] * Wt[f, :]
// Wt [F, D] is the down weight W [D, F] transposed, exactly, so each kept input reads one
// contiguous weight row: a decode step reads ~5% of the matrix, a prefill does ~5% of the
// arithmetic. f32 / f16 / bf16 weights transpose as they are. Quantized ones whose every value
// is a block scale times a small integer (Q8_0, Q4_0, IQ4_NL: d · q per 32 values; Q6_K:
// (d · scale) · q per 16), or that minus a block offset (Q4_K, Q5_K: (d · sc) · q - dmin · m
// per 32), transpose into int8 values Wt [F, D] and f32 scales S [F / B, D] (and offsets O),
// W[o, f] = S[f / B, o] · Wt[f, o] (- O[f / B, o]): the product is exact in f32 and the
// subtraction the decoder's, so each kept input's axpy adds exactly what it would add from
// the dequantized row. Above a measured density the
// ordinary product x · Wᵀ on the file's own W is taken instead.
#pragma once

#include "ops/kernels.h"
#include "ops/matmul.h"
#include "runtime/graph.h"

namespace altup::ops {

// Above this fraction of non-zero inputs the dense product is cheaper: bench_ops
// "matmul_sparse_*" (E2B's f16 shapes, 2 Zen 3 cores) put the crossover at 0.30 for one token
// and 0.25-0.30 for 512, in two runs (bench/results/bench_ops_sparse_ffn{,_run2}.jsonl).
constexpr double kSparseDenseAbove = 0.25;
// The int8 transpose of a quantized weight meets a faster dense product (the int8 panels) in
// prefill: bench_ops "matmul_sparse_Q8_0_*" put the crossover at 0.25 for one token and
// 0.10-0.15 for 512 (sparse / dense time 0.38 at 5%, 1.02 at 15%;
// bench/results/bench_ops_sparse_q8.jsonl).
constexpr double kSparseDenseAboveInt8Prefill = 0.12;
// The threshold matmul_sparse applies for M tokens on a transposed weight of this dtype.
inline double sparse_dense_above(DType wt, int64_t M) {
  return wt == DType::I8 && M > 1 ? kSparseDenseAboveInt8Prefill : kSparseDenseAbove;
}

// Whether a weight of this dtype can be transposed exactly for matmul_sparse.
bool sparse_transposable(DType t);

// w [D, F] -> wt [F, D], same dtype (f32 / f16 / bf16); wt holds F * D elements.
Status transpose_weight(const TensorView& w, void* wt, int threads);

// The quantized types that transpose into int8 values and scales, and B, the values per
// scale (0 for the others). Q4_K / Q5_K ((d · sc) · q - (dmin · m) per 32) also have offsets.
int64_t sparse_scale_block(DType t);
bool sparse_has_offsets(DType t);
// w [D, F] (a type with sparse_scale_block > 0) -> qt [F, D] int8 and st [F / B, D] f32
// (followed by the offsets, another [F / B, D], for Q4_K / Q5_K), read from the blocks'
// integers and scales: st · qt (- offset) is the decoded value, exactly.
Status transpose_weight_q(const TensorView& w, int8_t* qt, float* st, int threads);

namespace ref {
// In double, over every input (zeros included), from Wt (and its scales for an I8 Wt; offsets:
// the scales tensor holds the offsets after them).
void matmul_sparse(const float* x, int64_t M, const TensorView& wt, float* y, const TensorView* scales = nullptr,
                   bool offsets = false);
}  // namespace ref

// path: automatic chooses by the input's density; sparse or dense forces one (dense:
// the product on w). `table` as in matmul. scales: S for an I8 wt (from transpose_weight_q).
Status matmul_sparse(const float* x, int64_t M, const TensorView& w, const TensorView& wt, float* y, int threads,
                     SparsePath path = SparsePath::automatic, const Kernels* table = nullptr,
                     const TensorView* scales = nullptr);

// Graph op: inputs {x [.., F], W [D, F], Wt [F, D] (, S [F / B, D] for an I8 Wt)}, output
// [.., D]; DensityParams (ops/matmul.h).
extern const OpDef kMatMulSparse;

}  // namespace altup::ops

// Matrix products y[M, N] = x[M, K] · W[N, K]ᵀ with W row-major [out, in] in any computable
// dtype (runtime/dtype.h) and x, y in f32. Few tokens (decode) go through the hand-written
// GEMV, which streams W once per block of rows: int8 block kernels for Q8_0 / Q4_0 / IQ4_NL,
// the K-quants Q2_K-Q6_K and IQ4_XS, rows decoded to f32 for Q4_1 / Q5_0 / Q5_1. Q4_K / Q5_K /
// Q6_K weights with 2 tokens or more go through tiles of rows x tokens of the same int8 dot
// products (ops/qgemm_k-inl.h: the GEMV's bits, faster than oneDNN on widened rows), and so do
// Q8_0 / Q4_0 weights with many tokens on the AVX2 tables (panels of 8 rows:
// ops/qgemm_q8-inl.h). Other weights with many tokens (prefill) go through oneDNN's matmul,
// converting non-f32 weights to f32 a block of rows at a time; builds without oneDNN multiply
// Q8_0 / Q4_0 in int8 tiles too (ops/qgemv.h), f16 / bf16 in half-precision panels
// (ops/gemm_half.h) and the other types through the GEMV path. The switch-over
// (kGemvMaxTokens*) is chosen by measurement (bench/bench_ops: "matmul_crossover_*").
#pragma once

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

// Largest M that still uses the GEMV path, per weight dtype (measured on the development
// machine with cold weights, bench_ops "matmul_crossover_*"; see docs/kernels.md). Half-precision
// weights stay on GEMV longer because the oneDNN path must first widen them to f32.
constexpr int64_t kGemvMaxTokensF32 = 6;
constexpr int64_t kGemvMaxTokensHalf = 8;
// K-quant weights take the int8 tiles from this many tokens (they give the GEMV's bits per
// token, so the switch is for speed alone). 2-3 tokens (a StagFormer's p-row decode step)
// stay on the GEMV: 4096 x 2048 cold Q4_K / Q6_K on a 2-core Xeon, avx512_vnni and avx2
// tables, the tiles took 2.9-3.2x one token's time at 2 tokens and 3.8-4.5x at 3, the GEMV
// 1.8-2.0x and 2.8-2.9x; from 4 the tiles won (2.4-3.1x against 3.6-3.9x).
// bench_ops --few-tokens measures it.
constexpr int64_t kKquantTilesMinTokens = 4;
// From 2 tokens up to these, f16 / bf16 products take the dot-product tiles
// (Kernels::gemm_f16_dot) instead of the GEMV or oneDNN on widened rows, where the table
// widens in hardware (bench_ops "matmul_*_dot_over_*"; see docs/kernels.md). bf16's widening by
// shifts costs more than F16C's conversion, so it hands over to oneDNN sooner.
constexpr int64_t kHalfDotMaxTokensF16 = 256;
constexpr int64_t kHalfDotMaxTokensBF16 = 64;
// From this many tokens, bf16 products go to oneDNN in bf16 where it has AMX
// (dnnl_bf16_native_min_tokens, ops/gemm_dnnl.h), ahead of every path above. bench_ops
// ("matmul_BF16_m<M>_native_over_*", E2B's [8192 x 2048]) on 2 Sapphire-Rapids-class cores:
// 1.84x / 1.23x the dot tiles' time at 2 / 4 tokens, 0.55x at 8, 0.08-0.23x from 16 on.
constexpr int64_t kBf16NativeMinTokens = 8;
// Where oneDNN has vdpbf16ps but no AMX, its bf16 product can beat f32 on widened rows only
// if that instruction keeps up with f32 FMAs, which depends on the core (ops/bf16_rate.h).
// On the cores above capped at AVX512_CORE_BF16, where vdpbf16ps measured 0.50x the FMA
// rate, it took 1.55x the time of widened rows at 512 tokens (231 against 357 GFLOP/s,
// [8192 x 2048]), so below kBf16DotMinRate the rows stay widened. Even there it took 0.66 /
// 0.58 of the dot tiles' time at 32 / 64 tokens and 1.03 at 16: where it is taken, it is
// taken from 32 tokens.
constexpr double kBf16DotMinRate = 0.8;
constexpr int64_t kBf16DotNativeMinTokens = 32;

namespace ref {
// y[r] = sum_i W[r, i] * x[i] in double, for W of any decodable dtype.
void gemv(const TensorView& w, const float* x, float* y);
}  // namespace ref

// How matmul computes a product. automatic chooses by M, the dtype and the table; the others
// force one way (tests and bench_ops compare them):
//   gemv         one weight row at a time (ops/gemv.h)
//   onednn       oneDNN's product (the GEMV in builds without oneDNN)
//   int8_tiles   Q8_0 / Q4_0 / K-quant weights: the int8 tiles
//   half_panels  f16 / bf16 weights: the half-precision panels (ops/gemm_half.h)
//   half_dot     f16 / bf16 weights: the dot-product tiles
//   bf16_native  bf16 weights: oneDNN's bf16 product (an error where oneDNN has none)
enum class MatmulPath { automatic, gemv, onednn, int8_tiles, half_panels, half_dot, bf16_native };
const char* matmul_path_name(MatmulPath p);  // "gemv", ...

// The sparse products' (ops/matmul_masked.h, matmul_sparse.h): automatic chooses by density.
enum class SparsePath { automatic, sparse, dense };

// y = x · Wᵀ for M tokens. automatic takes: the GEMV up to the GEMV sizes; the int8 tiles
// for K-quants from 2 tokens, and for Q8_0 / Q4_0 above the GEMV sizes on the AVX2 tables and
// in builds without oneDNN (with the SSE4.2 table, oneDNN on widened rows measured faster);
// for f16 / bf16 the dot-product tiles from 2 tokens to kHalfDotMaxTokens* in builds with
// oneDNN on tables that widen f16 in hardware, the half-precision panels for many tokens in
// builds without oneDNN, and oneDNN's bf16 product (activations rounded to bf16) from
// dnnl_bf16_native_min_tokens() tokens where that is not 0; oneDNN otherwise.
// `table` picks a kernel table for the GEMV path (tests run every one); null: the one in use.
Status matmul(const float* x, int64_t M, const TensorView& w, float* y, int threads,
              MatmulPath path = MatmulPath::automatic, const Kernels* table = nullptr);

// The sparse products' parameter (ops/matmul_masked.h, matmul_sparse.h): the expected
// fraction of entries kept, from which the profiler estimates their work.
struct DensityParams {
  float density = 0.05f;
};

// Pieces of the GEMV path that the masked product (ops/matmul_masked.h) reuses, and the
// sparse products' shared work estimates.
namespace detail {
// A weight matmul can multiply: a computable dtype, 2-D, rows of whole blocks.
Status check_weight(const TensorView& w);
double expected_density(const Node& n);              // DensityParams, in [0, 1]; 1 without
double sparse_flops(const Node& n, const Graph& g);  // 2 · density · rows(x) · numel(W)
// The M activation rows in the 8-bit blocks that w's int8 kernels read (null for weights
// without such kernels), quantized once; the store belongs to the calling thread and holds
// until its next call.
const void* quantize_activations(const Kernels& k, DType t, const float* x, int64_t M, int64_t K, int threads);
// Token m against `rows` consecutive rows of W from r0: y[0, rows). x: all tokens' f32 rows
// [M, K]; xq: quantize_activations' result for them. Every row gives the same bits whether
// it is reached alone or in a block.
void gemv_token(const Kernels& k, const TensorView& w, const float* x, const void* xq, int64_t m, float* y, int64_t r0,
                int64_t rows);
}  // namespace detail

// Graph op: inputs {x [.., K], W [N, K]}, output [.., N].
extern const OpDef kMatMul;

}  // namespace altup::ops

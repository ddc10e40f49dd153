// Large matrix products through oneDNN's matmul primitive: y[M, N] = x[M, K] · W[N, K]ᵀ, all f32,
// row-major.
// Used for prefill (many tokens), where oneDNN's blocked kernels beat a GEMV loop.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/error.h"
#include "runtime/graph.h"

namespace altup::ops {

// Runs with `threads` OpenMP threads; call it outside any parallel region.
Status gemm_f32_dnnl(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k, int threads);

// The same with bf16 weights W [N, K] (raw bits): x is rounded to bf16 (nearest even) and
// oneDNN multiplies bf16 by bf16 with f32 sums: on AMX tiles, or with AVX512-BF16's
// vdpbf16ps. Below avx512_core_bf16 oneDNN refuses it: an error.
Status gemm_bf16_dnnl(const float* x, const uint16_t* w, float* y, int64_t m, int64_t n, int64_t k, int threads);
// Whether oneDNN, as capped by ONEDNN_MAX_CPU_ISA, has a bf16 product (avx512_core_bf16 or
// above).
bool dnnl_has_bf16();
// From how many tokens matmul's default sends bf16 products to gemm_bf16_dnnl; 0: never.
// Where oneDNN has AMX, from kBf16NativeMinTokens (ops/matmul.h). Where it has only
// vdpbf16ps, from kBf16DotNativeMinTokens if this CPU's bf16 dot-product rate
// (bf16_dot_rate_over_fma, ops/bf16_rate.h) is at least kBf16DotMinRate, else never.
// ALTUP_BF16_NATIVE=1 / 0 replaces that measurement by yes / no.
int64_t dnnl_bf16_native_min_tokens();
// Whether matmul's default sends a bf16 product of m tokens there.
bool dnnl_bf16_native_at(int64_t m);
// One line saying which bf16 prefill product is used and why (`altup info --system`).
std::string dnnl_bf16_plan();

// oneDNN matmul primitives created so far in this process (each costs 0.1 ms to
// milliseconds). A prompt of a new length creates none: each weight shape gets one
// primitive with the token count left to run time, plus, where oneDNN runs a fixed count
// with other kernels (brgemm on AVX-512), one for fixed chunks of 128 tokens that takes most
// rows (tests/test_ops_linear.cpp). Attention makes none at all (its own tiles).
int64_t dnnl_primitives_created();
// Whether products with weights [n, k] run in fixed chunks (decided at the first such
// product; false before it).
bool dnnl_chunked(int64_t n, int64_t k);
// Tests: weight shapes seen from now on run in fixed chunks whatever the CPU, so that the
// chunked path is tested on CPUs that would not take it.
void dnnl_force_chunks(bool on);

// Graph op: inputs {x [.., K], W [N, K]}, output [.., N].
extern const OpDef kMatMulDnnl;

}  // namespace altup::ops

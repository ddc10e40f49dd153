// Prefill products on half-precision weights: y[M, rows] = x[M, K] · Wᵀ with W [rows, K] in
// f16 or bf16 rows ldw elements apart, x and y f32 (y rows ldy apart). The SIMD versions
// (ops/gemm_half-inl.h) convert each weight once per call into f32 panels that every token
// reads, instead of widening the whole matrix for oneDNN. Not a graph op: ops/matmul.cpp
// calls it for many tokens.
#pragma once

#include <cstdint>

namespace altup::ops::ref {
// Plain loops summed in double: the reference every table is checked against.
void gemm_f16(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
              int64_t K);
void gemm_bf16(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t K);
}  // namespace altup::ops::ref

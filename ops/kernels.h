// The kernel table: every SIMD row kernel, as plain function pointers. One table is compiled
// per instruction set (ops/isa_*.cpp, each with its own -m flags) from the templates in
// ops/*-inl.h, plus one of scalar references; ops/isa.cpp picks the best table this CPU runs.
// Kernels work on the rows or elements they are given and never start threads.
#pragma once

#include <cstdint>

namespace altup::ops {

struct BlockQ8x;  // ops/qgemv.h
struct BlockQ8K;

enum class Act { Silu, GeluTanh, GeluErf };

struct Kernels {
  const char* isa;  // "scalar", "sse4.2", "avx2", "avx512", "avx512_vnni", "neon", "neon_dotprod"
  int lanes;        // f32 lanes per vector
  // Whether gemm_q8_0 / gemm_q4_0 below repack rows into panels (AVX2 tables): measured
  // faster than oneDNN on widened rows, so matmul takes them for prefill (ops/matmul.cpp).
  bool q8_gemm_panels;
  // Whether gemm_f16_dot / gemm_bf16_dot widen half precision in hardware (F16C, NEON): then
  // matmul takes them for mid-sized batches (ops/matmul.h kHalfDotMaxTokens). SSE4.2 has no
  // f16 conversion instruction, so its tiles would widen lane by lane, once per token block.
  bool half_dot;

  // Elementwise over n floats (y may alias an input).
  void (*add)(const float* a, const float* b, float* y, int64_t n);
  void (*mul)(const float* a, const float* b, float* y, int64_t n);
  void (*scale)(const float* x, float s, float* y, int64_t n);
  void (*act)(Act act, const float* x, float* y, int64_t n);
  void (*glu)(Act act, const float* g, const float* u, float* y, int64_t n);  // y = act(g) * u
  void (*softcap)(const float* x, float cap, float* y, int64_t n);            // cap * tanh(x / cap)
  // y += a * x; the same with x a row of f16 / bf16 values (the sparse FFN's transposed
  // down projection, ops/matmul_sparse.h)
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  void (*axpy_f16)(float a, const uint16_t* x, float* y, int64_t n);
  void (*axpy_bf16)(float a, const uint16_t* x, float* y, int64_t n);
  // y += a * (s ⊙ q), q int8 and s f32 (a quantized down weight transposed: values and scales)
  void (*axpy_i8s)(float a, const int8_t* q, const float* s, float* y, int64_t n);
  // y += a * (s ⊙ q - t): the same with offsets (Q4_K / Q5_K transposed)
  void (*axpy_i8so)(float a, const int8_t* q, const float* s, const float* t, float* y, int64_t n);

  // Reductions.
  float (*dot)(const float* a, const float* b, int64_t n);
  float (*sum_squares)(const float* x, int64_t n);
  float (*sum)(const float* x, int64_t n);

  // One row: y = x / sqrt(mean(x^2) + eps) * w (w may be null: no weight).
  void (*rmsnorm)(const float* x, const float* w, float* y, int64_t n, float eps);
  // One row: numerically stable softmax (y may alias x).
  void (*softmax)(const float* x, float* y, int64_t n);
  // NeoX rotate-half on one head of hd values: x[i], x[i + hd/2] rotated by (cos[i], sin[i]).
  void (*rope_neox)(float* x, const float* cos, const float* sin, int64_t hd);

  // Half-precision rows to f32.
  void (*cvt_f16)(const uint16_t* x, float* y, int64_t n);
  void (*cvt_bf16)(const uint16_t* x, float* y, int64_t n);

  // y[r] = dot(W row r, x) for r in [0, rows); W rows are ld elements apart.
  void (*gemv_f32)(const float* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n);
  void (*gemv_f16)(const uint16_t* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n);
  void (*gemv_bf16)(const uint16_t* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n);
  // Activation rows (n a multiple of the block) to 8-bit blocks for the quantized kernels
  // below; every table gives the scalar quantizer's bits (ops/qgemv.h).
  void (*quantize_q8x)(const float* x, BlockQ8x* y, int64_t n);
  void (*quantize_q8k)(const float* x, BlockQ8K* y, int64_t n);
  // Quantized weights (Q8_0 / Q4_0 rows of n_blocks blocks, row_bytes apart) against an
  // activation row already quantized to 8-bit blocks (ops/qgemv.h).
  void (*gemv_q8_0)(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks);
  // Q8_0 for two activation rows x0 / x1 at once (a StagFormer's shared-weights decode step):
  // each weight block loaded once for both; y0 / y1 get gemv_q8_0's bits for each row.
  void (*gemv2_q8_0)(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x0, const BlockQ8x* x1, float* y0, float* y1,
                     int64_t rows, int64_t n_blocks);
  void (*gemv_q4_0)(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks);
  // IQ4_NL (Q4_0's block layout, the nibbles indexing kIq4Values) the same way.
  void (*gemv_iq4_nl)(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks);
  // The same for M quantized activation rows (x: M x n_blocks), y[m * ldy + r]: prefill.
  void (*gemm_q8_0)(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy,
                    int64_t rows, int64_t n_blocks);
  void (*gemm_q4_0)(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy,
                    int64_t rows, int64_t n_blocks);

  // K-quant weights (Q4_K / Q5_K / Q6_K super-blocks of 256) against an activation row
  // quantized to 256-value blocks with their 16-value sums (ops/qgemv.h).
  void (*gemv_q4_k)(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
  void (*gemv_q5_k)(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
  void (*gemv_q6_k)(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
  void (*gemv_q2_k)(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
  void (*gemv_q3_k)(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
  // IQ4_XS (super-blocks of 256: 8 x 32 table indices, 6-bit scales) the same way.
  void (*gemv_iq4_xs)(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
  // The same for M activation rows (x: M x n_blocks), y[m * ldy + r]: prefill. Per token the
  // GEMV's bits exactly.
  void (*gemm_q4_k)(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy,
                    int64_t rows, int64_t n_blocks);
  void (*gemm_q5_k)(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy,
                    int64_t rows, int64_t n_blocks);
  void (*gemm_q6_k)(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy,
                    int64_t rows, int64_t n_blocks);

  // y[m*ldy + r] = sum_k x[m*K + k] * W[r*ldw + k] for M tokens, W rows in f16 / bf16:
  // prefill without widening the matrix first (ops/gemm_half.h).
  void (*gemm_f16)(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                   int64_t K);
  void (*gemm_bf16)(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                    int64_t K);
  // The same through dot-product tiles that widen the weights in registers (no panels):
  // faster than oneDNN on widened rows for fewer tokens (ops/gemm_half-inl.h).
  void (*gemm_f16_dot)(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                       int64_t K);
  void (*gemm_bf16_dot)(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                        int64_t K);

  // C[i*ldc + j] (+)= sum_p A[i*lda + p] * B[p*ldb + j], i < m, j < n, p < k: the small
  // products inside prefill attention (ops/gemm_tile.h).
  void (*gemm_tile)(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m,
                    int64_t n, int64_t k, bool accumulate);

  // AltUp on one token's K blocks of n floats (x[k], out[k] point at ring slots; out may be x).
  // predict: out[i] = sum_k p[i*K + k] * x[k]
  void (*altup_predict)(const float* const* x, float* const* out, const float* p, int K, int64_t n);
  // correct, in place: xhat[i] += g[i] * (y - xhat[j])
  void (*altup_correct)(float* const* xhat, const float* y, const float* g, int K, int j, int64_t n);
};

}  // namespace altup::ops

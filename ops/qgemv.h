// GEMV on quantized weights (ggml's Q8_0 and Q4_0 blocks of 32) with the activation row
// quantized to 8-bit blocks on the fly, as llama.cpp does it: per block of 32, an exact int32
// dot product of the int8 values, scaled once by (weight scale x activation scale).
//   Q8_0 weight: d (fp16), 32 x int8                -> value = d * q
//   Q4_0 weight: d (fp16), 16 bytes of two nibbles  -> value = d * (nibble - 8); element j is
//                the low nibble of byte j, element j + 16 its high nibble
//   activation:  d (f32), 32 x int8 in [-127, 127]  -> d = amax / 127, q = round(x / d)
#pragma once

#include <cstdint>

namespace altup::ops {

struct BlockQ8x {  // one quantized activation block (internal: never stored in a file)
  float d;
  int8_t qs[32];
};

// x [n] (n a multiple of 32) -> n / 32 blocks.
void quantize_row_q8x(const float* x, BlockQ8x* y, int64_t n);

namespace ref {
// y[r] = sum over blocks b of scale_w(r, b) * x[b].d * sum_i q_w(r, b, i) * x[b].qs[i], for
// rows r in [0, rows); W rows are row_bytes apart; n_blocks blocks per row.
void gemv_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks);
void gemv_q4_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks);
// The same for M activation rows (x: M rows of n_blocks blocks): y[m * ldy + r] for m < M.
// The SIMD versions tile rows x tokens so each weight block is loaded once per tile of tokens
// (prefill); each output still sums its blocks in order with one accumulator.
void gemm_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks);
void gemm_q4_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks);
}  // namespace ref

}  // namespace altup::ops

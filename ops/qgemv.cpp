#include "ops/qgemv.h"

#include <cmath>
#include <cstring>

#include "runtime/dtype.h"

namespace altup::ops {

void quantize_row_q8x(const float* x, BlockQ8x* y, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    y[b].d = d;
    // roundf, as ggml's reference quantizer; |x / d| <= 127, so never -128.
    for (int i = 0; i < 32; ++i) y[b].qs[i] = static_cast<int8_t>(std::roundf(xb[i] * id));
  }
}

namespace ref {

void gemv_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks) {
  for (int64_t r = 0; r < rows; ++r) {
    float sum = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      BlockQ8_0 blk;
      std::memcpy(&blk, w + r * row_bytes + b * sizeof(BlockQ8_0), sizeof blk);
      int32_t dot = 0;
      for (int i = 0; i < 32; ++i) dot += int32_t{blk.qs[i]} * int32_t{x[b].qs[i]};
      sum += fp16_to_fp32(blk.d) * x[b].d * static_cast<float>(dot);
    }
    y[r] = sum;
  }
}

void gemv_q4_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks) {
  for (int64_t r = 0; r < rows; ++r) {
    float sum = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      BlockQ4_0 blk;
      std::memcpy(&blk, w + r * row_bytes + b * sizeof(BlockQ4_0), sizeof blk);
      int32_t dot = 0;
      for (int i = 0; i < 16; ++i) {
        dot += (int32_t{blk.qs[i] & 0x0F} - 8) * int32_t{x[b].qs[i]};
        dot += (int32_t{blk.qs[i] >> 4} - 8) * int32_t{x[b].qs[i + 16]};
      }
      sum += fp16_to_fp32(blk.d) * x[b].d * static_cast<float>(dot);
    }
    y[r] = sum;
  }
}

void gemm_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks) {
  for (int64_t m = 0; m < M; ++m) gemv_q8_0(w, row_bytes, x + m * n_blocks, y + m * ldy, rows, n_blocks);
}

void gemm_q4_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks) {
  for (int64_t m = 0; m < M; ++m) gemv_q4_0(w, row_bytes, x + m * n_blocks, y + m * ldy, rows, n_blocks);
}

}  // namespace ref
}  // namespace altup::ops

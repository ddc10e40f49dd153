#include "ops/qgemv.h"

#include <atomic>
#include <cmath>
#include <cstring>

#include "runtime/dtype.h"

namespace altup::ops {

namespace {
// n values to int8 with one scale, d = amax / 127, q = round(x / d) (roundf, as ggml's
// reference quantizer; |x / d| <= 127, so never -128). Returns d.
float quantize_block(const float* x, int8_t* q, int n) {
  float amax = 0;
  for (int i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = static_cast<int8_t>(std::roundf(x[i] * id));
  return d;
}

// 0: each table's own threshold (ops/qgemm_panel-inl.h's Vec::kPanelMinTokens).
std::atomic<int64_t> panel_min_tokens{0};
}  // namespace
int64_t kquant_panel_min_tokens() { return panel_min_tokens.load(std::memory_order_relaxed); }
void set_kquant_panel_min_tokens(int64_t tokens) { panel_min_tokens.store(tokens, std::memory_order_relaxed); }

void quantize_row_q8x(const float* x, BlockQ8x* y, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    y[b].d = q8x_scale(quantize_block(x + b * 32, y[b].qs, 32));
    set_sum(y[b]);
  }
}

void quantize_row_q8k(const float* x, BlockQ8K* y, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b) {
    y[b].d = quantize_block(x + b * 256, y[b].qs, 256);
    set_bsums(y[b]);
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

void gemv2_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x0, const BlockQ8x* x1, float* y0, float* y1,
                int64_t rows, int64_t n_blocks) {
  gemv_q8_0(w, row_bytes, x0, y0, rows, n_blocks);
  gemv_q8_0(w, row_bytes, x1, y1, rows, n_blocks);
}

void gemv_iq4_nl(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks) {
  for (int64_t r = 0; r < rows; ++r) {
    float sum = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      BlockQ4_0 blk;  // the same layout: fp16 d, 16 bytes of nibbles
      std::memcpy(&blk, w + r * row_bytes + b * sizeof(BlockQ4_0), sizeof blk);
      int32_t dot = 0;
      for (int i = 0; i < 16; ++i) {
        dot += int32_t{kIq4Values[blk.qs[i] & 0x0F]} * int32_t{x[b].qs[i]};
        dot += int32_t{kIq4Values[blk.qs[i] >> 4]} * int32_t{x[b].qs[i + 16]};
      }
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

namespace {
// The GEMM references: the GEMV reference once per token.
template <class Block, void (*kGemv)(const uint8_t*, int64_t, const Block*, float*, int64_t, int64_t)>
void per_token(const uint8_t* w, int64_t row_bytes, const Block* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks) {
  for (int64_t m = 0; m < M; ++m) kGemv(w, row_bytes, x + m * n_blocks, y + m * ldy, rows, n_blocks);
}
}  // namespace

void gemm_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks) {
  per_token<BlockQ8x, gemv_q8_0>(w, row_bytes, x, M, y, ldy, rows, n_blocks);
}

void gemm_q4_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks) {
  per_token<BlockQ8x, gemv_q4_0>(w, row_bytes, x, M, y, ldy, rows, n_blocks);
}

namespace {
float u16_half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// Q4_K / Q5_K: per sub-block s of 32, sc_s * sum(q * x) and m_s * sum(x), written out from
// the block layout value by value.
template <bool kFive>
void gemv_q45_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks) {
  constexpr int64_t kBytes = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = w + r * row_bytes + b * kBytes;
      const uint8_t* qh = blk + 16;
      const uint8_t* qs = blk + (kFive ? 48 : 16);
      int32_t sumi = 0, summ = 0;
      for (int s = 0; s < 8; ++s) {
        int sc, m;
        kquant_scale_min(blk + 4, s, &sc, &m);
        int32_t dot = 0;
        for (int l = 0; l < 32; ++l) {
          int q = s % 2 == 0 ? (qs[32 * (s / 2) + l] & 0x0F) : (qs[32 * (s / 2) + l] >> 4);
          if (kFive) q |= ((qh[l] >> s) & 1) << 4;
          dot += q * x[b].qs[32 * s + l];
        }
        sumi += sc * dot;
        summ += m * (x[b].bsums[2 * s] + x[b].bsums[2 * s + 1]);
      }
      acc = kq_finish(acc, u16_half(blk), u16_half(blk + 2), x[b].d, sumi, summ);
    }
    y[r] = acc;
  }
}
}  // namespace

void gemv_q4_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks) {
  gemv_q45_k<false>(w, row_bytes, x, y, rows, n_blocks);
}

void gemv_q5_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks) {
  gemv_q45_k<true>(w, row_bytes, x, y, rows, n_blocks);
}

void gemv_q2_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks) {
  constexpr int64_t kBytes = 84;  // scales[16], qs[64], fp16 d, fp16 dmin
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = w + r * row_bytes + b * kBytes;
      const uint8_t *sc = blk, *qs = blk + 16;
      int32_t sumi = 0, summ = 0;
      for (int i = 0; i < kQK; ++i) {
        const int h = i / 128, j = (i % 128) / 32, l = i % 32, g = i / 16;
        sumi += (sc[g] & 0x0F) * ((qs[32 * h + l] >> (2 * j)) & 3) * x[b].qs[i];
      }
      for (int g = 0; g < 16; ++g) summ += (sc[g] >> 4) * x[b].bsums[g];
      acc = kq_finish(acc, u16_half(blk + 80), u16_half(blk + 82), x[b].d, sumi, summ);
    }
    y[r] = acc;
  }
}

void gemv_q3_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks) {
  constexpr int64_t kBytes = 110;  // hmask[32], qs[64], scales[12], fp16 d
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = w + r * row_bytes + b * kBytes;
      const uint8_t *hmask = blk, *qs = blk + 32, *sc = blk + 96;
      int32_t sumi = 0;
      for (int i = 0; i < kQK; ++i) {
        const int h = i / 128, j = (i % 128) / 32, l = i % 32, g = i / 16;
        const int scale = q3k_scale(sc, g);
        const int q = ((qs[32 * h + l] >> (2 * j)) & 3) - 4 + 4 * ((hmask[l] >> (4 * h + j)) & 1);
        sumi += scale * q * x[b].qs[i];
      }
      acc = kq_finish(acc, u16_half(blk + 108), 0.0f, x[b].d, sumi, 0);
    }
    y[r] = acc;
  }
}

void gemv_iq4_xs(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks) {
  constexpr int64_t kBytes = 136;  // fp16 d, scales_h, scales_l[4], qs[128]
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = w + r * row_bytes + b * kBytes;
      const uint8_t* qs = blk + 8;
      int32_t sumi = 0;
      for (int s = 0; s < 8; ++s) {
        int32_t dot = 0;
        for (int j = 0; j < 16; ++j) {
          dot += int32_t{kIq4Values[qs[16 * s + j] & 0x0F]} * x[b].qs[32 * s + j];
          dot += int32_t{kIq4Values[qs[16 * s + j] >> 4]} * x[b].qs[32 * s + 16 + j];
        }
        sumi += iq4xs_scale(blk, s) * dot;
      }
      acc = kq_finish(acc, u16_half(blk), 0.0f, x[b].d, sumi, 0);
    }
    y[r] = acc;
  }
}

void gemv_q6_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks) {
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      BlockQ6_K blk;
      std::memcpy(&blk, w + r * row_bytes + b * static_cast<int64_t>(sizeof blk), sizeof blk);
      int32_t sumi = 0;
      for (int i = 0; i < kQK; ++i) sumi += blk.scales[i / 16] * q6k_value(blk, i) * x[b].qs[i];
      acc = kq_finish(acc, u16_half(blk.d), 0.0f, x[b].d, sumi, 0);
    }
    y[r] = acc;
  }
}

void gemm_q4_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks) {
  per_token<BlockQ8K, gemv_q4_k>(w, row_bytes, x, M, y, ldy, rows, n_blocks);
}

void gemm_q5_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks) {
  per_token<BlockQ8K, gemv_q5_k>(w, row_bytes, x, M, y, ldy, rows, n_blocks);
}

void gemm_q6_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks) {
  per_token<BlockQ8K, gemv_q6_k>(w, row_bytes, x, M, y, ldy, rows, n_blocks);
}

}  // namespace ref
}  // namespace altup::ops

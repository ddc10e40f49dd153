// GEMV on quantized weights (ggml's Q8_0 and Q4_0 blocks of 32) with the activation row
// quantized to 8-bit blocks on the fly, as llama.cpp does it: per block of 32, an exact int32
// dot product of the int8 values, scaled once by (weight scale x activation scale).
//   Q8_0 weight: d (fp16), 32 x int8                -> value = d * q
//   Q4_0 weight: d (fp16), 16 bytes of two nibbles  -> value = d * (nibble - 8); element j is
//                the low nibble of byte j, element j + 16 its high nibble
//   activation:  d, 32 x int8 in [-127, 127]        -> d = amax / 127, q = roundf(x * (1 / d)),
//                and d then rounded to fp16 as ggml's block_q8_0 stores it (the q are from
//                the f32 d): ggml's reference quantizer (quantize_row_q8_0_ref) bit for bit,
//                so a product is the same quantity llama.cpp computes. With d kept in f32
//                the Q8_0 model in bench/quant_compare.py took the other side of a 0.009
//                near-tie at its second greedy step.
#pragma once

#include <cstdint>
#include <cstring>

#include "runtime/dtype.h"

namespace altup::ops {

struct BlockQ8x {  // one quantized activation block (internal: never stored in a file)
  float d;
  int8_t qs[32];
  int32_t sum;  // qs[0] + ... + qs[31]: Q4_0's offset of 8 taken out in one multiply (int32:
                // the AVX2 kernels broadcast it straight from memory; the block is 40 bytes
                // either way)
};

// x [n] (n a multiple of 32) -> n / 32 blocks.
void quantize_row_q8x(const float* x, BlockQ8x* y, int64_t n);
inline float q8x_scale(float d) { return fp16_to_fp32(fp32_to_fp16(d)); }  // the stored d
inline void set_sum(BlockQ8x& b) {  // b.sum from b.qs (every quantizer's last step)
  int sum = 0;
  for (int8_t q : b.qs) sum += q;
  b.sum = sum;
}

// K-quant weights (runtime/dtype.h: Q4_K, Q5_K, Q6_K, super-blocks of 256) take the
// activation in blocks of 256 with the sums of each 16 values kept, as llama.cpp's Q8_K: a
// sub-block's min (Q4_K / Q5_K) or Q6_K's offset of 32 then costs one multiply of a sum.
// Per super-block, the SIMD kernels and the reference form the same exact int32 sums and
// finish with the same float steps (kq_finish), so every table gives the same bits.
struct BlockQ8K {
  float d;            // amax / 127
  int8_t qs[256];     // round(x / d), in [-127, 127]
  int16_t bsums[16];  // bsums[i] = sum of qs[16i .. 16i + 15]
};
void quantize_row_q8k(const float* x, BlockQ8K* y, int64_t n);  // n a multiple of 256
inline void set_bsums(BlockQ8K& b) {                            // b.bsums from b.qs
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += b.qs[16 * g + i];
    b.bsums[g] = static_cast<int16_t>(sum);
  }
}

// The token count from which the AVX2 tables' K-quant GEMM repacks weight rows into panels
// instead of running row tiles (ops/qgemm_kpanel-inl.h; both give the same bits). A setting,
// so that bench_ops can time both ways and a CPU unlike ours can be tuned: 0 (the default)
// means each table's own measured threshold (ops/qgemm_panel-inl.h: 24 tokens on AVX2 and
// AVX-512, 16 on avx512_vnni); a value from 1 up is used as it is; below 0 means always.
int64_t kquant_panel_min_tokens();
void set_kquant_panel_min_tokens(int64_t tokens);

// acc + (d * xd) * sumi - (dmin * xd) * summ, rounded step by step (no fma: the project
// builds with -ffp-contract=off), so the reference and every table agree bit for bit.
inline float kq_finish(float acc, float d, float dmin, float xd, int32_t sumi, int32_t summ) {
  return acc + d * xd * static_cast<float>(sumi) - dmin * xd * static_cast<float>(summ);
}

// Q3_K's 16 scales at once (q3k_scale's values, runtime/dtype.h), worked on as 32-bit
// words, four scales per word.
inline void q3k_scales(const uint8_t* p, int8_t out[16]) {
  uint32_t w[3], o[4];
  std::memcpy(w, p, 12);
  const uint32_t low4 = 0x0f0f0f0fu, low2 = 0x03030303u;
  o[0] = (w[0] & low4) | (w[2] & low2) << 4;
  o[1] = (w[1] & low4) | ((w[2] >> 2) & low2) << 4;
  o[2] = ((w[0] >> 4) & low4) | ((w[2] >> 4) & low2) << 4;
  o[3] = ((w[1] >> 4) & low4) | ((w[2] >> 6) & low2) << 4;
  // Each byte less 32 without borrows between bytes: b | 0x80 - 0x20 stays >= 0x60, and the
  // xor takes the 0x80 back (b < 0x20 wraps to b - 32 as an int8).
  for (uint32_t& v : o) v = ((v | 0x80808080u) - 0x20202020u) ^ 0x80808080u;
  std::memcpy(out, o, 16);
}

namespace ref {
// y[r] = sum over blocks b of scale_w(r, b) * x[b].d * sum_i q_w(r, b, i) * x[b].qs[i], for
// rows r in [0, rows); W rows are row_bytes apart; n_blocks blocks per row.
void gemv_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks);
// gemv_q8_0 for x0 into y0 and x1 into y1.
void gemv2_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x0, const BlockQ8x* x1, float* y0, float* y1,
                int64_t rows, int64_t n_blocks);
void gemv_q4_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks);
void gemv_iq4_nl(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks);
// The same for M activation rows (x: M rows of n_blocks blocks): y[m * ldy + r] for m < M.
// The SIMD versions tile rows x tokens so each weight block is loaded once per tile of tokens
// (prefill); each output still sums its blocks in order with one accumulator.
void gemm_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks);
void gemm_q4_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks);
// K-quants: y[r] = sum over super-blocks of the decoded weights times the activation block,
// as exact integer sums per super-block (kq_finish).
void gemv_q4_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
void gemv_q5_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
void gemv_q6_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
// IQ4_XS: per super-block, sub-block s's exact sum of table values times activations, times
// its scale (6 bits, less 32), then kq_finish(acc, d, 0, x.d, sum, 0).
void gemv_iq4_xs(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
// Q3_K: per super-block, the sum over its 16 groups of 16 of scale (6 bits, less 32) times
// the exact sum of q (2 bits, less 4 unless the hmask bit is set) times activations, then
// kq_finish(acc, d, 0, x.d, sum, 0).
void gemv_q3_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
// Q2_K: as Q4_K with 16 groups of 16: sumi = sum of sc times q (2 bits) times activations,
// summ = sum of m times the group's activation sum (sc, m: the low and high nibble of
// scales[g]), then kq_finish(acc, d, dmin, x.d, sumi, summ).
void gemv_q2_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks);
// M activation rows: the GEMV once per token (the SIMD versions tile rows x tokens and give
// the same bits).
void gemm_q4_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks);
void gemm_q5_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks);
void gemm_q6_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t n_blocks);
}  // namespace ref

}  // namespace altup::ops

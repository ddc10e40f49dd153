// Quantized GEMV (ops/qgemv.h) per instruction set. The int8 dot products are written with
// raw intrinsics, chosen by what the including table is compiled for: AVX2 (maddubs; the
// AVX-512 table uses it too), SSSE3 (the SSE4.2 table), baseline NEON (widening multiplies).
#include <cstring>

#if defined(__AVX2__) || defined(__SSSE3__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#include "ops/qgemv.h"
#include "runtime/dtype.h"

namespace altup::ops::ALTUP_ISA {

namespace qgemv_detail {

// 32 weights in [-128, 127] (w) against 32 activations in [-127, 127] (x): the exact int32
// sum of products, reduced to one float as the caller scales it.
#if defined(__AVX2__)
// Per-lane partial sums of one block, as 8 floats (the caller scales and accumulates them).
inline __m256 dot32(__m256i w, __m256i x) {
  // maddubs multiplies unsigned by signed bytes: |w| times x carrying w's sign. Pairs of
  // products fit int16 (2 x 128 x 127), then pairs of pairs are summed to int32.
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline __m256i unpack_q4(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i lo = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F));
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));  // elements 0..15, 16..31
}
#elif defined(__SSSE3__)
inline __m128 dot16(__m128i w, __m128i x) {
  const __m128i p16 = _mm_maddubs_epi16(_mm_sign_epi8(w, w), _mm_sign_epi8(x, w));
  return _mm_cvtepi32_ps(_mm_madd_epi16(p16, _mm_set1_epi16(1)));
}
inline float hsum(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
#elif defined(__ARM_NEON)
inline int32x4_t dot16(int8x16_t w, int8x16_t x) {
  int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(x));
  p = vmlal_s8(p, vget_high_s8(w), vget_high_s8(x));  // two products per int16: fits
  return vpaddlq_s16(p);
}
#endif

}  // namespace qgemv_detail

inline void gemv_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows,
                      int64_t n_blocks) {
  using namespace qgemv_detail;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
#if defined(__AVX2__)
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = row + b * sizeof(BlockQ8_0);
      uint16_t d;
      std::memcpy(&d, blk, 2);
      const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_to_fp32(d) * x[b].d), dot32(qw, qx), acc);
    }
    y[r] = hsum(acc);
#elif defined(__SSSE3__)
    __m128 acc = _mm_setzero_ps();
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = row + b * sizeof(BlockQ8_0);
      uint16_t d;
      std::memcpy(&d, blk, 2);
      const __m128i w0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m128i w1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 18));
      const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs));
      const __m128i x1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs + 16));
      const __m128 s = _mm_add_ps(dot16(w0, x0), dot16(w1, x1));
      acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(fp16_to_fp32(d) * x[b].d), s));
    }
    y[r] = hsum(acc);
#elif defined(__ARM_NEON)
    float32x4_t acc = vdupq_n_f32(0);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = row + b * sizeof(BlockQ8_0);
      uint16_t d;
      std::memcpy(&d, blk, 2);
      const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
      const int32x4_t s =
          vaddq_s32(dot16(vld1q_s8(q), vld1q_s8(x[b].qs)), dot16(vld1q_s8(q + 16), vld1q_s8(x[b].qs + 16)));
      acc = vmlaq_n_f32(acc, vcvtq_f32_s32(s), fp16_to_fp32(d) * x[b].d);
    }
    y[r] = vaddvq_f32(acc);
#else
    ref::gemv_q8_0(row, row_bytes, x, y + r, 1, n_blocks);
#endif
  }
}

inline void gemv_q4_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows,
                      int64_t n_blocks) {
  using namespace qgemv_detail;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
#if defined(__AVX2__)
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = row + b * sizeof(BlockQ4_0);
      uint16_t d;
      std::memcpy(&d, blk, 2);
      const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_to_fp32(d) * x[b].d), dot32(unpack_q4(blk + 2), qx), acc);
    }
    y[r] = hsum(acc);
#elif defined(__SSSE3__)
    __m128 acc = _mm_setzero_ps();
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = row + b * sizeof(BlockQ4_0);
      uint16_t d;
      std::memcpy(&d, blk, 2);
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m128i eight = _mm_set1_epi8(8), low = _mm_set1_epi8(0x0F);
      const __m128i w0 = _mm_sub_epi8(_mm_and_si128(packed, low), eight);
      const __m128i w1 = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(packed, 4), low), eight);
      const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs));
      const __m128i x1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs + 16));
      const __m128 s = _mm_add_ps(dot16(w0, x0), dot16(w1, x1));
      acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(fp16_to_fp32(d) * x[b].d), s));
    }
    y[r] = hsum(acc);
#elif defined(__ARM_NEON)
    float32x4_t acc = vdupq_n_f32(0);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = row + b * sizeof(BlockQ4_0);
      uint16_t d;
      std::memcpy(&d, blk, 2);
      const uint8x16_t packed = vld1q_u8(blk + 2);
      const int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(0x0F))), vdupq_n_s8(8));
      const int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), vdupq_n_s8(8));
      const int32x4_t s = vaddq_s32(dot16(w0, vld1q_s8(x[b].qs)), dot16(w1, vld1q_s8(x[b].qs + 16)));
      acc = vmlaq_n_f32(acc, vcvtq_f32_s32(s), fp16_to_fp32(d) * x[b].d);
    }
    y[r] = vaddvq_f32(acc);
#else
    ref::gemv_q4_0(row, row_bytes, x, y + r, 1, n_blocks);
#endif
  }
}

}  // namespace altup::ops::ALTUP_ISA

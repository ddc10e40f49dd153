// Quantized GEMV (ops/qgemv.h) per instruction set. The int8 dot products are written with
// raw intrinsics, chosen by what the including table is compiled for: AVX2 (maddubs; the
// AVX-512 table uses it too, the avx512_vnni table vpdpbusd in its place), SSSE3 (the
// SSE4.2 table), baseline NEON (widening multiplies), NEON with the dot-product extension
// (sdot; the neon_dotprod table). Each set supplies: W32 (32 weights as signed bytes),
// load_q8 / load_q4 (one block's values), and Acc with zero / fma / hsum; one loop
// (gemv_blocks) serves both weight types.
#include <algorithm>
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

#if defined(__AVX2__)
using W32 = __m256i;
using Acc = __m256;
inline W32 load_q8(const uint8_t* q) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)); }
inline W32 load_q4(const uint8_t* q) {  // element j: low nibble of byte j; j + 16: its high nibble
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  const __m128i lo = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F));
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}
inline W32 load_iq4nl(const uint8_t* q) {  // the nibbles as load_q4 orders them, looked up
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  const __m128i lo = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F));
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
  return _mm256_shuffle_epi8(table, _mm256_set_m128i(hi, lo));
}
// acc + (each 4 unsigned bytes of u times the 4 signed bytes of s, summed) per int32 lane.
// VNNI does it in one instruction, exactly; maddubs + madd sums pairs in int16 first, which
// is exact as long as a pair fits (every caller's values keep 2 |u| |s| <= 32767).
inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__)
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
// Exact int32 partial sums of w·x (w in [-128, 127], x in [-127, 127]), as floats.
inline Acc block_dot(W32 w, const int8_t* xq) {
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
  // Unsigned times signed bytes: |w| times x carrying w's sign (pairs: 2 x 128 x 127 fits).
  return _mm256_cvtepi32_ps(dot_u8s8(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)));
}
// Sum over w's 32 values of w * x, times the scale, in int32 lanes (IQ4_XS's sub-blocks, in
// ops/qgemv_k-inl.h, whose I32 these are).
inline __m256i scaled_dot(W32 w, const int8_t* xq, int scale) {
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(static_cast<int16_t>(scale)));
}
inline Acc zero() { return _mm256_setzero_ps(); }
inline Acc fma(Acc acc, float s, Acc v) { return _mm256_fmadd_ps(_mm256_set1_ps(s), v, acc); }
inline Acc add(Acc a, Acc b) { return _mm256_add_ps(a, b); }
inline float half(uint16_t h) { return _cvtsh_ss(h); }  // F16C: the AVX2 and AVX-512 tables have it
inline float hsum(Acc v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#elif defined(__SSSE3__)
struct W32 {
  __m128i lo, hi;  // elements 0..15, 16..31
};
using Acc = __m128;
inline W32 load_q8(const uint8_t* q) {
  return {_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16))};
}
inline W32 load_q4(const uint8_t* q) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  const __m128i eight = _mm_set1_epi8(8), low = _mm_set1_epi8(0x0F);
  return {_mm_sub_epi8(_mm_and_si128(packed, low), eight),
          _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(packed, 4), low), eight)};
}
inline W32 load_iq4nl(const uint8_t* q) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  const __m128i low = _mm_set1_epi8(0x0F);
  const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values));
  return {_mm_shuffle_epi8(table, _mm_and_si128(packed, low)),
          _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(packed, 4), low))};
}
inline __m128i dot16(__m128i w, __m128i x) {
  return _mm_madd_epi16(_mm_maddubs_epi16(_mm_sign_epi8(w, w), _mm_sign_epi8(x, w)), _mm_set1_epi16(1));
}
inline Acc block_dot(W32 w, const int8_t* xq) {
  const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xq));
  const __m128i x1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xq + 16));
  return _mm_cvtepi32_ps(_mm_add_epi32(dot16(w.lo, x0), dot16(w.hi, x1)));
}
inline __m128i scaled_dot(W32 w, const int8_t* xq, int scale) {
  const __m128i s = _mm_set1_epi16(static_cast<int16_t>(scale));
  const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xq));
  const __m128i x1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xq + 16));
  return _mm_add_epi32(_mm_madd_epi16(_mm_maddubs_epi16(_mm_sign_epi8(w.lo, w.lo), _mm_sign_epi8(x0, w.lo)), s),
                       _mm_madd_epi16(_mm_maddubs_epi16(_mm_sign_epi8(w.hi, w.hi), _mm_sign_epi8(x1, w.hi)), s));
}
inline Acc zero() { return _mm_setzero_ps(); }
inline Acc fma(Acc acc, float s, Acc v) { return _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(s), v)); }
inline Acc add(Acc a, Acc b) { return _mm_add_ps(a, b); }
inline float half(uint16_t h) { return fp16_to_fp32(h); }  // no F16C in the SSE4.2 table
inline float hsum(Acc s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
#elif defined(__ARM_NEON)
struct W32 {
  int8x16_t lo, hi;
};
using Acc = float32x4_t;
inline W32 load_q8(const uint8_t* q) {
  return {vld1q_s8(reinterpret_cast<const int8_t*>(q)), vld1q_s8(reinterpret_cast<const int8_t*>(q + 16))};
}
inline W32 load_q4(const uint8_t* q) {
  const uint8x16_t packed = vld1q_u8(q);
  return {vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(0x0F))), vdupq_n_s8(8)),
          vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), vdupq_n_s8(8))};
}
inline W32 load_iq4nl(const uint8_t* q) {
  const uint8x16_t packed = vld1q_u8(q);
  const int8x16_t table = vld1q_s8(kIq4Values);
  return {vqtbl1q_s8(table, vandq_u8(packed, vdupq_n_u8(0x0F))), vqtbl1q_s8(table, vshrq_n_u8(packed, 4))};
}
inline int32x4_t dot16(int8x16_t w, int8x16_t x) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(vdupq_n_s32(0), w, x);  // lane i: products 4i .. 4i + 3, in one sdot
#else
  int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(x));
  p = vmlal_s8(p, vget_high_s8(w), vget_high_s8(x));  // two products per int16: fits
  return vpaddlq_s16(p);
#endif
}
inline Acc block_dot(W32 w, const int8_t* xq) {
  return vcvtq_f32_s32(vaddq_s32(dot16(w.lo, vld1q_s8(xq)), dot16(w.hi, vld1q_s8(xq + 16))));
}
inline int32x4_t scaled_dot(W32 w, const int8_t* xq, int scale) {
  return vmulq_n_s32(vaddq_s32(dot16(w.lo, vld1q_s8(xq)), dot16(w.hi, vld1q_s8(xq + 16))), scale);
}
inline Acc zero() { return vdupq_n_f32(0); }
inline Acc fma(Acc acc, float s, Acc v) { return vmlaq_n_f32(acc, v, s); }
inline Acc add(Acc a, Acc b) { return vaddq_f32(a, b); }
inline float half(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }
inline float hsum(Acc v) { return vaddvq_f32(v); }
#endif

#if defined(__AVX2__) || defined(__SSSE3__) || defined(__ARM_NEON)
// y[r] = sum over blocks of (weight scale · activation scale) · (exact int dot of the block).
// Two accumulators (even and odd blocks) so consecutive blocks do not wait on one another's
// multiply-add; decode is a stream of these, so the loop must keep up with memory.
// Dot: a block's exact int32 dot (its values after the fp16 scale, the activation block).
template <W32 (*Load)(const uint8_t*)>
inline Acc loaded_dot(const uint8_t* q, const BlockQ8x& xb) {
  return block_dot(Load(q), xb.qs);
}
template <size_t kBlockBytes, Acc (*Dot)(const uint8_t*, const BlockQ8x&)>
void gemv_blocks(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows, int64_t n_blocks) {
  auto step = [&](const uint8_t* row, int64_t b, Acc acc) {
    const uint8_t* blk = row + b * static_cast<int64_t>(kBlockBytes);
    uint16_t d;  // the block's fp16 scale comes first
    std::memcpy(&d, blk, 2);
    return fma(acc, half(d) * x[b].d, Dot(blk + 2, x[b]));
  };
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
    Acc acc0 = zero(), acc1 = zero();
    int64_t b = 0;
    for (; b + 1 < n_blocks; b += 2) {
      prefetch_ahead(row + b * static_cast<int64_t>(kBlockBytes), 2 * kBlockBytes);  // gemv-inl.h
      acc0 = step(row, b, acc0);
      acc1 = step(row, b + 1, acc1);
    }
    if (b < n_blocks) acc0 = step(row, b, acc0);
    y[r] = hsum(add(acc0, acc1));
  }
}

// Two tokens through the same rows: each weight block and its scale loaded once for both,
// and each token's sum taken with gemv_blocks' float steps (even and odd blocks apart), so
// y0 / y1 hold the bits gemv_blocks gives each token alone. (A StagFormer's shared-weights
// decode step: decode on 8-bit weights is bound by the integer work, not the bytes.)
template <size_t kBlockBytes, W32 (*Load)(const uint8_t*)>
void gemv2_blocks(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x0, const BlockQ8x* x1, float* y0, float* y1,
                  int64_t rows, int64_t n_blocks) {
  auto step = [&](const uint8_t* row, int64_t b, Acc& a0, Acc& a1) {
    const uint8_t* blk = row + b * static_cast<int64_t>(kBlockBytes);
    uint16_t d;
    std::memcpy(&d, blk, 2);
    const float dw = half(d);
    const W32 wv = Load(blk + 2);
    a0 = fma(a0, dw * x0[b].d, block_dot(wv, x0[b].qs));
    a1 = fma(a1, dw * x1[b].d, block_dot(wv, x1[b].qs));
  };
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
    Acc a0 = zero(), a1 = zero(), b0 = zero(), b1 = zero();  // token 0 even / odd, token 1 even / odd
    int64_t b = 0;
    for (; b + 1 < n_blocks; b += 2) {
      prefetch_ahead(row + b * static_cast<int64_t>(kBlockBytes), 2 * kBlockBytes);
      step(row, b, a0, b0);
      step(row, b + 1, a1, b1);
    }
    if (b < n_blocks) step(row, b, a0, b0);
    y0[r] = hsum(add(a0, a1));
    y1[r] = hsum(add(b0, b1));
  }
}

// Prefill: a tile of RM weight rows x RN tokens. Each weight block is loaded (and its scale
// converted) once for RN tokens, each activation block once for RM rows; every output keeps
// one accumulator over the blocks in order, so any tiling gives the same bits.
template <size_t kBlockBytes, W32 (*Load)(const uint8_t*), int RM, int RN>
inline void gemm_tile(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t n_blocks, float* y, int64_t ldy) {
  Acc acc[RM][RN];
  for (int i = 0; i < RM; ++i)
    for (int j = 0; j < RN; ++j) acc[i][j] = zero();
  for (int64_t b = 0; b < n_blocks; ++b) {
    W32 wv[RM];
    float dw[RM];
    for (int i = 0; i < RM; ++i) {
      const uint8_t* blk = w + i * row_bytes + b * static_cast<int64_t>(kBlockBytes);
      uint16_t d;
      std::memcpy(&d, blk, 2);
      dw[i] = half(d);
      wv[i] = Load(blk + 2);
    }
    for (int j = 0; j < RN; ++j) {
      const BlockQ8x& xb = x[j * n_blocks + b];
      for (int i = 0; i < RM; ++i) acc[i][j] = fma(acc[i][j], dw[i] * xb.d, block_dot(wv[i], xb.qs));
    }
  }
  for (int i = 0; i < RM; ++i)
    for (int j = 0; j < RN; ++j) y[j * ldy + i] = hsum(acc[i][j]);
}

// Rows go in chunks small enough to stay in L2 while every tile of tokens passes over them;
// a token tile's activations stay in L1 across the chunk.
template <size_t kBlockBytes, W32 (*Load)(const uint8_t*)>
void gemm_blocks(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                 int64_t n_blocks) {
  constexpr int RM = 4, RN = 2;
  const int64_t chunk = std::max<int64_t>(RM, (128 << 10) / std::max<int64_t>(row_bytes, 1) / RM * RM);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk);
    for (int64_t m = 0; m < M; m += RN) {
      const int64_t rn = std::min<int64_t>(RN, M - m);
      for (int64_t r = r0; r < r1; r += RM) {
        const int64_t rm = std::min<int64_t>(RM, r1 - r);
        const uint8_t* wr = w + r * row_bytes;
        const BlockQ8x* xm = x + m * n_blocks;
        float* yt = y + m * ldy + r;
        if (rm == RM && rn == RN) {
          gemm_tile<kBlockBytes, Load, RM, RN>(wr, row_bytes, xm, n_blocks, yt, ldy);
        } else {
          for (int64_t i = 0; i < rm; ++i)
            for (int64_t j = 0; j < rn; ++j)
              gemm_tile<kBlockBytes, Load, 1, 1>(wr + i * row_bytes, row_bytes, xm + j * n_blocks, n_blocks,
                                                 yt + j * ldy + i, ldy);
        }
      }
    }
  }
}
#endif

}  // namespace qgemv_detail

inline void gemv_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows,
                      int64_t n_blocks) {
#if defined(__AVX2__) || defined(__SSSE3__) || defined(__ARM_NEON)
  qgemv_detail::gemv_blocks<sizeof(BlockQ8_0), qgemv_detail::loaded_dot<qgemv_detail::load_q8>>(w, row_bytes, x, y,
                                                                                                rows, n_blocks);
#else
  ref::gemv_q8_0(w, row_bytes, x, y, rows, n_blocks);
#endif
}

inline void gemv2_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x0, const BlockQ8x* x1, float* y0,
                       float* y1, int64_t rows, int64_t n_blocks) {
#if defined(__AVX2__) || defined(__SSSE3__) || defined(__ARM_NEON)
  qgemv_detail::gemv2_blocks<sizeof(BlockQ8_0), qgemv_detail::load_q8>(w, row_bytes, x0, x1, y0, y1, rows, n_blocks);
#else
  ref::gemv2_q8_0(w, row_bytes, x0, x1, y0, y1, rows, n_blocks);
#endif
}

#if defined(__AVX2__)
namespace qgemv_detail {
// Q4_0 on AVX2 with the nibbles as they are, unsigned (maddubs' unsigned side: no sign
// trick), and the offset of 8 taken out per block by subtracting the activation block's sum
// from each of the 8 int32 lanes (8 lanes x sum = 8 x sum). One 128-bit broadcast and one
// variable shift put the low nibbles in the low half and the high ones in the high half.
// Decode on 4-bit weights is compute-bound on 2 cores: 4 fewer instructions per block.
inline Acc block_dot_q4(const uint8_t* q, const BlockQ8x& xb) {
  const __m256i packed = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
  const __m256i w =
      _mm256_and_si256(_mm256_srlv_epi32(packed, _mm256_set_epi32(4, 4, 4, 4, 0, 0, 0, 0)), _mm256_set1_epi8(0x0F));
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs));
  return _mm256_cvtepi32_ps(dot_u8s8(_mm256_set1_epi32(-xb.sum), w, x));
}
}  // namespace qgemv_detail
#endif

inline void gemv_q4_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, float* y, int64_t rows,
                      int64_t n_blocks) {
#if defined(__AVX2__)
  qgemv_detail::gemv_blocks<sizeof(BlockQ4_0), qgemv_detail::block_dot_q4>(w, row_bytes, x, y, rows, n_blocks);
#elif defined(__SSSE3__) || defined(__ARM_NEON)
  qgemv_detail::gemv_blocks<sizeof(BlockQ4_0), qgemv_detail::loaded_dot<qgemv_detail::load_q4>>(w, row_bytes, x, y,
                                                                                                rows, n_blocks);
#else
  ref::gemv_q4_0(w, row_bytes, x, y, rows, n_blocks);
#endif
}

// IQ4_NL: Q4_0's layout with the nibbles looked up in kIq4Values (one byte shuffle), then
// Q8_0's signed dot products (|w| <= 127: maddubs pairs fit int16).
#if defined(__AVX2__) || defined(__SSSE3__) || defined(__ARM_NEON)
constexpr auto gemv_iq4_nl =
    qgemv_detail::gemv_blocks<sizeof(BlockQ4_0), qgemv_detail::loaded_dot<qgemv_detail::load_iq4nl>>;
#else
constexpr auto gemv_iq4_nl = ref::gemv_iq4_nl;
#endif

#if !defined(__AVX2__)  // AVX2: panels of 8 rows (ops/qgemm_q8-inl.h)
inline void gemm_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy,
                      int64_t rows, int64_t n_blocks) {
#if defined(__SSSE3__) || defined(__ARM_NEON)
  qgemv_detail::gemm_blocks<sizeof(BlockQ8_0), qgemv_detail::load_q8>(w, row_bytes, x, M, y, ldy, rows, n_blocks);
#else
  ref::gemm_q8_0(w, row_bytes, x, M, y, ldy, rows, n_blocks);
#endif
}

inline void gemm_q4_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy,
                      int64_t rows, int64_t n_blocks) {
#if defined(__SSSE3__) || defined(__ARM_NEON)
  qgemv_detail::gemm_blocks<sizeof(BlockQ4_0), qgemv_detail::load_q4>(w, row_bytes, x, M, y, ldy, rows, n_blocks);
#else
  ref::gemm_q4_0(w, row_bytes, x, M, y, ldy, rows, n_blocks);
#endif
}
#endif

}  // namespace altup::ops::ALTUP_ISA

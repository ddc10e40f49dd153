// K-quant prefill (Q4_K, Q5_K, Q6_K weights x M activation rows; ops/qgemv.h) per
// instruction set, built on the GEMV's primitives (ops/qgemv_k-inl.h, included first).
//
// A tile of RM weight rows x RN tokens walks the super-blocks in order. Each 32-value group
// of a weight row is unpacked (nibbles, fifth / sixth bits) and its scales broadcast once,
// then multiplied with RN tokens' activations; each activation group is loaded once for the
// RM rows. Per (row, token) the super-block's sum is the same exact int32 as the GEMV's and
// the float finish is kq_finish in block order, so a tile gives the GEMV's bits, whatever
// RM and RN are, and the reference is simply the GEMV reference run once per token.
#include <algorithm>
#include <cstring>

#include "ops/qgemv.h"
#include "runtime/dtype.h"

namespace altup::ops::ALTUP_ISA {

namespace qgemm_k_detail {

#if defined(__AVX2__) || defined(__SSSE3__) || defined(__ARM_NEON)
using namespace qgemv_k_detail;  // U32, X32, Sc, I32 and their operations

#if defined(__AVX2__)
// The 8 horizontal int32 sums of v[0..7], in order, in one vector (one hsum each would take
// five times the instructions; they are paid per row, token and super-block).
inline __m256i hsum8(const __m256i v[8]) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}
// Four consecutive tokens' super-block b: their 16-value sums and scales.
struct Tokens4 {
  __m256i bsums[4];
  __m128 xd;  // lane t: token t's d
};
inline Tokens4 tokens4(const BlockQ8K* xt, int64_t n_blocks) {  // xt: the first token's block
  Tokens4 t;
  for (int k = 0; k < 4; ++k) t.bsums[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt[k * n_blocks].bsums));
  t.xd = _mm_set_ps(xt[3 * n_blocks].d, xt[2 * n_blocks].d, xt[n_blocks].d, xt[0].d);
  return t;
}

// kq_finish for 4 tokens of one row, lane t = token t, with the scalar's steps and rounding:
// (acc + (d * xd) * sumi) - (dmin * xd) * summ. dots: the 4 tokens' dot vectors; each
// token's 16-value sums times `per16` (the row's mins, each repeated for its two sums, or
// Q6_K's 16 scales) give summ, reduced in the same pass as the dots.
inline void finish4(float* acc, float d, float dmin, const Tokens4& x, const __m256i dots[4], __m256i per16,
                    bool offset32) {
  const __m256i v[8] = {dots[0],
                        dots[1],
                        dots[2],
                        dots[3],
                        _mm256_madd_epi16(x.bsums[0], per16),
                        _mm256_madd_epi16(x.bsums[1], per16),
                        _mm256_madd_epi16(x.bsums[2], per16),
                        _mm256_madd_epi16(x.bsums[3], per16)};
  const __m256i sums = hsum8(v);
  __m128i sumi = _mm256_castsi256_si128(sums), summ = _mm256_extracti128_si256(sums, 1);
  if (offset32) {  // Q6_K: sumi - 32 * offset, and no min
    sumi = _mm_sub_epi32(sumi, _mm_slli_epi32(summ, 5));
    summ = _mm_setzero_si128();
  }
  __m128 a = _mm_add_ps(_mm_loadu_ps(acc), _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(d), x.xd), _mm_cvtepi32_ps(sumi)));
  a = _mm_sub_ps(a, _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(dmin), x.xd), _mm_cvtepi32_ps(summ)));
  _mm_storeu_ps(acc, a);
}
#endif

// si[i][t] += sub-block g of row i (unpacked values q[i], scales s[i]) times token t's
// activation group g, for the RM rows and RN tokens of a tile; x: token 0's block.
template <int RM, int RN>
inline void dot_tokens(const U32 (&q)[RM], const Sc (&s)[RM], const BlockQ8K* x, int64_t n_blocks, int g,
                       I32 (&si)[RM][RN]) {
#pragma GCC unroll 4
  for (int t = 0; t < RN; ++t) {
    const X32 xv = load_x(x[t * n_blocks].qs + 32 * g);
#pragma GCC unroll 4
    for (int i = 0; i < RM; ++i) si[i][t] = dot_sc_add(si[i][t], q[i], xv, s[i]);
  }
}

// Q4_K / Q5_K (layout: ops/qgemv_k-inl.h's gemv_q45_k). x: RN tokens, n_blocks apart.
template <bool kFive, int RM, int RN>
void tile_q45_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t n_blocks, float* y, int64_t ldy) {
  constexpr int64_t kBytes = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  float acc[RM][RN] = {};
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* blk[RM];
    uint8_t sc[RM][8], mn[RM][8];
    U32 qh[RM];
    for (int i = 0; i < RM; ++i) {
      blk[i] = w + i * row_bytes + b * kBytes;
      kquant_scales_mins(blk[i] + 4, sc[i], mn[i]);
      if constexpr (kFive) qh[i] = load32(blk[i] + 16);
    }
    I32 si[RM][RN];
    for (int i = 0; i < RM; ++i)
      for (int t = 0; t < RN; ++t) si[i][t] = zero();
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {  // sub-block g: the low (even g) or high nibbles of group g / 2
      U32 q[RM];
      Sc s[RM];
#pragma GCC unroll 4
      for (int i = 0; i < RM; ++i) {
        const U32 packed = load32(blk[i] + (kFive ? 48 : 16) + 32 * (g / 2));
        q[i] = g % 2 == 0 ? low_nibbles(packed) : high_nibbles(packed);
        if constexpr (kFive) q[i] = or_shl4(q[i], bits(qh[i], g, 1));
        s[i] = scales(sc[i][g], sc[i][g]);
      }
      dot_tokens<RM, RN>(q, s, x + b, n_blocks, g, si);
    }
#if defined(__AVX2__)
    if constexpr (RN % 4 == 0) {
      for (int t0 = 0; t0 < RN; t0 += 4) {  // four tokens at a time
        const Tokens4 xt = tokens4(x + t0 * n_blocks + b, n_blocks);
        for (int i = 0; i < RM; ++i)
          finish4(acc[i] + t0, half(blk[i]), half(blk[i] + 2), xt, si[i] + t0, mins_repeated(mn[i]), false);
      }
      continue;
    }
#endif
    for (int i = 0; i < RM; ++i) {
      const float d = half(blk[i]), dmin = half(blk[i] + 2);
      for (int t = 0; t < RN; ++t) {
        const BlockQ8K& xb = x[t * n_blocks + b];
        acc[i][t] = kq_finish(acc[i][t], d, dmin, xb.d, hsum(si[i][t]), mins_dot(xb.bsums, mn[i]));
      }
    }
  }
  for (int i = 0; i < RM; ++i)
    for (int t = 0; t < RN; ++t) y[t * ldy + i] = acc[i][t];
}

// Q6_K (layout: gemv_q6_k_rows): per half of 128 values, four 32-value groups, each with two
// scales of 16; the stored q is the value + 32, taken back out through the activation sums.
template <int RM, int RN>
void tile_q6_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t n_blocks, float* y, int64_t ldy) {
  constexpr int64_t kBytes = sizeof(BlockQ6_K);
  float acc[RM][RN] = {};
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* blk[RM];
    const int8_t* sc[RM];
    for (int i = 0; i < RM; ++i) {
      blk[i] = w + i * row_bytes + b * kBytes;
      sc[i] = reinterpret_cast<const int8_t*>(blk[i] + offsetof(BlockQ6_K, scales));
    }
    I32 si[RM][RN];
    for (int i = 0; i < RM; ++i)
      for (int t = 0; t < RN; ++t) si[i][t] = zero();
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {  // half h = g / 4; within it, group c = g % 4
      const int h = g / 4, c = g % 4;
      U32 q[RM];
      Sc s[RM];
#pragma GCC unroll 4
      for (int i = 0; i < RM; ++i) {
        const U32 l = load32(blk[i] + 64 * h + 32 * (c % 2));
        const U32 qh = load32(blk[i] + offsetof(BlockQ6_K, qh) + 32 * h);
        q[i] = or_shl4(c < 2 ? low_nibbles(l) : high_nibbles(l), bits(qh, 2 * c, 3));
        s[i] = scales(sc[i][2 * g], sc[i][2 * g + 1]);
      }
      dot_tokens<RM, RN>(q, s, x + b, n_blocks, g, si);
    }
#if defined(__AVX2__)
    if constexpr (RN % 4 == 0) {
      for (int t0 = 0; t0 < RN; t0 += 4) {
        const Tokens4 xt = tokens4(x + t0 * n_blocks + b, n_blocks);
        for (int i = 0; i < RM; ++i) {
          const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc[i])));
          finish4(acc[i] + t0, half(blk[i] + offsetof(BlockQ6_K, d)), 0.0f, xt, si[i] + t0, s16, true);
        }
      }
      continue;
    }
#endif
    for (int i = 0; i < RM; ++i) {
      const float d = half(blk[i] + offsetof(BlockQ6_K, d));
      for (int t = 0; t < RN; ++t) {
        const BlockQ8K& xb = x[t * n_blocks + b];
        acc[i][t] = kq_finish(acc[i][t], d, 0.0f, xb.d, hsum(sub32x(si[i][t], scale_sums(xb.bsums, sc[i]))), 0);
      }
    }
  }
  for (int i = 0; i < RM; ++i)
    for (int t = 0; t < RN; ++t) y[t * ldy + i] = acc[i][t];
}

using TileFn = void (*)(const uint8_t*, int64_t, const BlockQ8K*, int64_t, float*, int64_t);

// Rows in chunks that stay in L2 while every tile of tokens passes over them. Tiles of RM
// rows take RN tokens, then what is left in fours and ones; the last rows go one at a time
// (the same bits whichever tile computes an output, as above).
template <TileFn kTile, TileFn kTile4, TileFn kTile1, TileFn kOne, int RM, int RN>
void gemm_tiles(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                int64_t n_blocks) {
  const int64_t chunk = std::max<int64_t>(RM, (256 << 10) / std::max<int64_t>(row_bytes, 1) / RM * RM);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk);
    for (int64_t m = 0; m < M;) {
      const int64_t rn = M - m >= RN ? RN : M - m >= 4 ? 4 : 1;
      const TileFn tile = rn == RN ? kTile : rn == 4 ? kTile4 : kTile1;
      const BlockQ8K* xm = x + m * n_blocks;
      int64_t r = r0;
      for (; r + RM <= r1; r += RM) tile(w + r * row_bytes, row_bytes, xm, n_blocks, y + m * ldy + r, ldy);
      for (; r < r1; ++r)
        for (int64_t j = 0; j < rn; ++j)
          kOne(w + r * row_bytes, row_bytes, xm + j * n_blocks, n_blocks, y + (m + j) * ldy + r, ldy);
      m += rn;
    }
  }
}

// Measured on AVX2 (Zen 3, one thread, Q4_K 64 x 64 x 2048 in cache): 2 x 8 at ~47 GMAC/s
// against 2 x 4 ~40, 4 x 4 ~42, 1 x 4 ~45; the GEMV once per token ~16.
constexpr int kRM = 2, kRN = 8;
#endif

}  // namespace qgemm_k_detail

#if defined(__AVX2__) || defined(__SSSE3__) || defined(__ARM_NEON)
namespace qgemm_k_detail {
// The tile sizes gemm_tiles takes, of one weight type.
template <bool kFive>
struct Q45 {
  template <int RM, int RN>
  static constexpr TileFn tile = tile_q45_k<kFive, RM, RN>;
};
struct Q6 {
  template <int RM, int RN>
  static constexpr TileFn tile = tile_q6_k<RM, RN>;
};
template <class T>
void gemm(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy, int64_t rows,
          int64_t n_blocks) {
  gemm_tiles<T::template tile<kRM, kRN>, T::template tile<kRM, 4>, T::template tile<kRM, 1>, T::template tile<1, 1>,
             kRM, kRN>(w, row_bytes, x, M, y, ldy, rows, n_blocks);
}
}  // namespace qgemm_k_detail

// y[m * ldy + r] for m < M, r < rows: per token, exactly the GEMV's y (ops/qgemm_kpanel-inl.h
// chooses between these and its panels for the table's gemm_q*_k).
constexpr auto tiles_q4_k = qgemm_k_detail::gemm<qgemm_k_detail::Q45<false>>;
constexpr auto tiles_q5_k = qgemm_k_detail::gemm<qgemm_k_detail::Q45<true>>;
constexpr auto tiles_q6_k = qgemm_k_detail::gemm<qgemm_k_detail::Q6>;
#else
constexpr auto tiles_q4_k = ref::gemm_q4_k;
constexpr auto tiles_q5_k = ref::gemm_q5_k;
constexpr auto tiles_q6_k = ref::gemm_q6_k;
#endif

}  // namespace altup::ops::ALTUP_ISA

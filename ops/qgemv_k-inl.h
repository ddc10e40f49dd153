// K-quant GEMV (Q4_K, Q5_K, Q6_K weights; ops/qgemv.h) per instruction set. Each
// super-block of 256 weights is unpacked 32 values at a time into unsigned bytes (at most 63)
// and multiplied with the activation's int8 values; the sub-block scales are applied as
// int16 multipliers in the pairwise add, so the super-block's sum stays an exact int32 and
// the float finish (kq_finish) is the reference's, step for step.
//
// Each instruction set supplies U32 (32 unsigned bytes), I32 (int32 lanes) and: load32,
// low_nibbles / high_nibbles, bits (v >> shift & mask per byte), or_shl4 (a | b << 4, b < 16),
// X32 (32 activation bytes, load_x), Sc (two sub-block scales, scales) and dot_sc
// (s0 * sum of the first 16 products + s1 * sum of the last 16; dot_sc_add adds it to an
// accumulator), add, hsum.
#include <cstring>

#if defined(__AVX2__) || defined(__SSSE3__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#include "ops/qgemv.h"
#include "runtime/dtype.h"

namespace altup::ops::ALTUP_ISA {

namespace qgemv_k_detail {

#if defined(__AVX2__)
using U32 = __m256i;
using I32 = __m256i;
inline U32 load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline U32 bits(U32 v, int shift, int mask) {
  // 16-bit shifts move a neighbour byte's bits in at the top; the mask drops them.
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(static_cast<char>(mask)));
}
inline U32 or_shl4(U32 a, U32 b) { return _mm256_or_si256(a, _mm256_slli_epi16(b, 4)); }
inline U32 or_shl2(U32 a, U32 b) { return _mm256_or_si256(a, _mm256_slli_epi16(b, 2)); }  // b < 2
using X32 = __m256i;                                                                      // 32 activation bytes
using Sc = __m256i;  // two sub-block scales as int16 lanes: s0 for values 0..15, s1 for 16..31
inline X32 load_x(const int8_t* x) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)); }
inline Sc scales(int s0, int s1) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(s1)), _mm_set1_epi16(static_cast<int16_t>(s0)));
}
// A Q4_K / Q5_K super-block's 8 sub-block scales as int16, in both 128-bit lanes: one
// shuffle then gives sub-block g's scale vector (a broadcast from a register costs three).
struct ScTab {
  __m256i v;
};
inline Sc scale_of(ScTab t, int g) {
  return _mm256_shuffle_epi8(t.v, _mm256_set1_epi16(static_cast<int16_t>((2 * g + 1) << 8 | 2 * g)));
}
inline I32 dot_sc(U32 q, X32 x, Sc sc) {
  // maddubs: unsigned q (<= 63) times signed x, adjacent pairs summed to int16 (<= 16002).
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), sc);
}
inline I32 zero() { return _mm256_setzero_si256(); }
inline I32 add(I32 a, I32 b) { return _mm256_add_epi32(a, b); }
// acc + dot_sc(q, x, sc). On the avx512_vnni table vpdpwssd does the scales' pairwise
// multiply and the add in one instruction (it wraps as madd + add do: the same int32).
inline I32 dot_sc_add(I32 acc, U32 q, X32 x, Sc sc) {
#if defined(__AVX512VNNI__)
  return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(q, x), sc);
#else
  return add(acc, dot_sc(q, x, sc));
#endif
}
inline int32_t hsum(I32 v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}
// sum over sub-blocks s of m[s] * (bsums[2s] + bsums[2s + 1]), exact: each min is repeated
// for its two 16-value sums and the pairs are multiplied and added as int16 -> int32.
inline __m256i repeated(__m128i m16) {  // 8 int16 m[s] -> m[s] in int16 lanes 2s and 2s + 1
  return _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
}
inline __m256i mins_repeated(const uint8_t* m) {
  return repeated(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(m))));
}
inline int32_t mins_dot(const int16_t* bsums, const uint8_t* m) {
  return hsum(_mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums)), mins_repeated(m)));
}
// A Q4_K / Q5_K block's 8 scales (bytes 0..7) and 8 mins (8..15), as kquant_scales_mins
// unpacks them, in one register: the GEMV takes its scale table and mins from it with no
// trip through memory. p: the 12 packed bytes; the 4 after them (still the block's) are
// read and dropped. As 32-bit words w0 w1 w2: scales 0..3 = w0 & 0x3f.., mins 0..3 =
// w1 & 0x3f..; scales 4..7 = w2 & 0x0f.. | (w0 >> 6 & 0x03..) << 4, mins 4..7 the same with
// w2 >> 4 and w1.
struct KScales {
  __m128i v;
};
inline KScales kscales(const uint8_t* p) {
  const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i t = _mm_shuffle_epi32(w, _MM_SHUFFLE(2, 1, 2, 0));  // w0 w2 w1 w2
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(t, _mm_set_epi32(4, 0, 0, 0)),
                                    _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
  const __m128i u = _mm_shuffle_epi32(w, _MM_SHUFFLE(1, 1, 0, 0));  // w0 w0 w1 w1
  const __m128i top = _mm_and_si128(_mm_srli_epi32(u, 2), _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
  return {_mm_or_si128(low, top)};
}
inline ScTab scale_table(KScales k) { return {_mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(k.v))}; }
// kq_finish(acc, d, dmin, xd, hsum(si), the mins' sum) for a Q4_K / Q5_K super-block, with
// both horizontal sums in one pass and d, dmin converted together, step for step the same
// float operations (so the same bits): the per-block tail was a third of the GEMV's work.
inline float finish_q45(float acc, const uint8_t* blk, const BlockQ8K& xb, __m256i si, KScales k) {
  const __m256i m = repeated(_mm_cvtepu8_epi16(_mm_srli_si128(k.v, 8)));
  const __m256i mv = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums)), m);
  const __m256i h = _mm256_hadd_epi32(si, mv);  // si 01 23, mins 01 23 | si 45 67, mins 45 67
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  s = _mm_hadd_epi32(s, s);  // sumi, summ, sumi, summ
  int32_t dd;                // d and dmin: the block's first two halves
  std::memcpy(&dd, blk, 4);
  const __m128 scale = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(dd)), _mm_set1_ps(xb.d));  // d xd, dmin xd
  const __m128 p = _mm_mul_ps(scale, _mm_cvtepi32_ps(s));
  return acc + _mm_cvtss_f32(p) - _mm_cvtss_f32(_mm_movehdup_ps(p));
}
// Q6_K: half h's 8 signed scales as int16 in both 128-bit lanes; one shuffle gives group c's
// pair (scale 2c for its first 16 values, 2c + 1 for the last 16), where building it from two
// scalars took six instructions.
struct Sc6Tab {
  __m256i v;
};
inline Sc6Tab scale6_table(const int8_t* s) {
  return {_mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s))))};
}
inline Sc scale6_of(Sc6Tab t, int c) {
  const auto pick = [](int lane) { return _mm_set1_epi16(static_cast<int16_t>((2 * lane + 1) << 8 | 2 * lane)); };
  return _mm256_shuffle_epi8(t.v, _mm256_set_m128i(pick(2 * c + 1), pick(2 * c)));
}
// Lanes that add up to sum over g < 16 of sc[g] * bsums[g] (Q6_K's offset, before the 32).
inline I32 scale_sums(const int16_t* bsums, const int8_t* sc) {
  return _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums)),
                           _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc))));
}
inline I32 sub32x(I32 a, I32 b) { return _mm256_sub_epi32(a, _mm256_slli_epi32(b, 5)); }  // a - 32 b
inline I32 sub4x(I32 a, I32 b) { return _mm256_sub_epi32(a, _mm256_slli_epi32(b, 2)); }   // a - 4 b
#elif defined(__SSSE3__)
struct U32 {
  __m128i lo, hi;  // values 0..15, 16..31
};
using I32 = __m128i;
inline U32 load32(const uint8_t* p) {
  return {_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16))};
}
inline U32 bits(U32 v, int shift, int mask) {
  const __m128i n = _mm_cvtsi32_si128(shift), m = _mm_set1_epi8(static_cast<char>(mask));
  return {_mm_and_si128(_mm_srl_epi16(v.lo, n), m), _mm_and_si128(_mm_srl_epi16(v.hi, n), m)};
}
inline U32 or_shl4(U32 a, U32 b) {
  return {_mm_or_si128(a.lo, _mm_slli_epi16(b.lo, 4)), _mm_or_si128(a.hi, _mm_slli_epi16(b.hi, 4))};
}
inline U32 or_shl2(U32 a, U32 b) {
  return {_mm_or_si128(a.lo, _mm_slli_epi16(b.lo, 2)), _mm_or_si128(a.hi, _mm_slli_epi16(b.hi, 2))};
}
struct X32 {
  __m128i lo, hi;
};
struct Sc {
  __m128i s0, s1;
};
inline X32 load_x(const int8_t* x) {
  return {_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 16))};
}
inline Sc scales(int s0, int s1) {
  return {_mm_set1_epi16(static_cast<int16_t>(s0)), _mm_set1_epi16(static_cast<int16_t>(s1))};
}
inline I32 dot_sc(U32 q, X32 x, Sc sc) {
  return _mm_add_epi32(_mm_madd_epi16(_mm_maddubs_epi16(q.lo, x.lo), sc.s0),
                       _mm_madd_epi16(_mm_maddubs_epi16(q.hi, x.hi), sc.s1));
}
inline I32 zero() { return _mm_setzero_si128(); }
inline I32 add(I32 a, I32 b) { return _mm_add_epi32(a, b); }
inline I32 lane0(int32_t v) { return _mm_cvtsi32_si128(v); }
inline int32_t hsum(I32 s) {
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);  // no F16C in the SSE4.2 table
}
#elif defined(__ARM_NEON)
struct U32 {
  uint8x16_t lo, hi;
};
using I32 = int32x4_t;
inline U32 load32(const uint8_t* p) { return {vld1q_u8(p), vld1q_u8(p + 16)}; }
inline U32 bits(U32 v, int shift, int mask) {
  const int8x16_t n = vdupq_n_s8(static_cast<int8_t>(-shift));  // a negative left shift shifts right
  const uint8x16_t m = vdupq_n_u8(static_cast<uint8_t>(mask));
  return {vandq_u8(vshlq_u8(v.lo, n), m), vandq_u8(vshlq_u8(v.hi, n), m)};
}
inline U32 or_shl4(U32 a, U32 b) { return {vorrq_u8(a.lo, vshlq_n_u8(b.lo, 4)), vorrq_u8(a.hi, vshlq_n_u8(b.hi, 4))}; }
inline U32 or_shl2(U32 a, U32 b) { return {vorrq_u8(a.lo, vshlq_n_u8(b.lo, 2)), vorrq_u8(a.hi, vshlq_n_u8(b.hi, 2))}; }
struct X32 {
  int8x16_t lo, hi;
};
struct Sc {
  int16_t s0, s1;
};
inline X32 load_x(const int8_t* x) { return {vld1q_s8(x), vld1q_s8(x + 16)}; }
inline Sc scales(int s0, int s1) { return {static_cast<int16_t>(s0), static_cast<int16_t>(s1)}; }
inline int32x4_t dot16(uint8x16_t q, int8x16_t xv, int16_t s, int32x4_t acc) {
  const int8x16_t qs = vreinterpretq_s8_u8(q);  // q <= 63: a valid int8
#if defined(__ARM_FEATURE_DOTPROD)
  // sdot: four products per int32 lane (|sum| <= 4 x 63 x 127), then times the scale.
  return vmlaq_n_s32(acc, vdotq_s32(vdupq_n_s32(0), qs, xv), s);
#else
  int16x8_t p = vmull_s8(vget_low_s8(qs), vget_low_s8(xv));
  p = vmlal_s8(p, vget_high_s8(qs), vget_high_s8(xv));  // two products per int16: fits
  acc = vmlal_n_s16(acc, vget_low_s16(p), s);
  return vmlal_n_s16(acc, vget_high_s16(p), s);
#endif
}
inline I32 dot_sc(U32 q, X32 x, Sc sc) { return dot16(q.hi, x.hi, sc.s1, dot16(q.lo, x.lo, sc.s0, vdupq_n_s32(0))); }
inline I32 zero() { return vdupq_n_s32(0); }
inline I32 add(I32 a, I32 b) { return vaddq_s32(a, b); }
inline I32 lane0(int32_t v) { return vsetq_lane_s32(v, vdupq_n_s32(0), 0); }
inline int32_t hsum(I32 v) { return vaddvq_s32(v); }
inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}
#endif

#if defined(__AVX2__) || defined(__SSSE3__) || defined(__ARM_NEON)
#if !defined(__AVX2__)
struct ScTab {
  const uint8_t* s;  // the 8 scales, alive while the table is used
};
inline Sc scale_of(ScTab t, int g) { return scales(t.s[g], t.s[g]); }
struct KScales {
  uint8_t sc[8], mn[8];
};
inline KScales kscales(const uint8_t* p) {
  KScales k;
  kquant_scales_mins(p, k.sc, k.mn);
  return k;
}
inline ScTab scale_table(const KScales& k) { return {k.sc}; }  // k must outlive the table
inline int32_t mins_dot(const int16_t* bsums, const uint8_t* m) {
  int32_t sum = 0;
  for (int s = 0; s < 8; ++s) sum += m[s] * (bsums[2 * s] + bsums[2 * s + 1]);
  return sum;
}
inline float finish_q45(float acc, const uint8_t* blk, const BlockQ8K& xb, I32 si, const KScales& k) {
  return kq_finish(acc, half(blk), half(blk + 2), xb.d, hsum(si), mins_dot(xb.bsums, k.mn));
}
struct Sc6Tab {
  const int8_t* s;
};
inline Sc6Tab scale6_table(const int8_t* s) { return {s}; }
inline Sc scale6_of(Sc6Tab t, int c) { return scales(t.s[2 * c], t.s[2 * c + 1]); }
inline int32_t scale_sums(const int16_t* bsums, const int8_t* sc) {  // one int: its own hsum
  int32_t sum = 0;
  for (int g = 0; g < 16; ++g) sum += sc[g] * bsums[g];
  return sum;
}
inline int32_t hsum(int32_t v) { return v; }  // scale_sums' one int, as the AVX2 lanes' sum
inline I32 sub32x(I32 a, int32_t b) { return add(a, lane0(-32 * b)); }
inline I32 sub4x(I32 a, int32_t b) { return add(a, lane0(-4 * b)); }
inline I32 dot_sc_add(I32 acc, U32 q, X32 x, Sc sc) { return add(acc, dot_sc(q, x, sc)); }
#endif
inline U32 low_nibbles(U32 v) { return bits(v, 0, 0x0F); }
inline U32 high_nibbles(U32 v) { return bits(v, 4, 0x0F); }

// Q4_K / Q5_K: 4 groups of 64 values, each 32 bytes of nibbles (low: sub-block 2j, high:
// 2j + 1); Q5_K's fifth bit of value l of sub-block s is bit s of qh[l].
template <bool kFive>
void gemv_q45_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks) {
  constexpr int64_t kBytes = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = w + r * row_bytes + b * kBytes;
      // ops/gemv-inl.h: keeps the stream going across row (page) ends. bench_ops' cold
      // 8192 x 2048 GEMV, 2 Sapphire-Rapids-class cores, two runs each: Q4_K 34.4 / 33.9 ->
      // 37.6 / 38.7 GB/s, Q5_K 32.5 / 28.3 -> 33.9 / 36.6, Q6_K 31.4 / 27.0 -> 31.6 / 34.4,
      // Q2_K 18.7 -> 20.5, IQ4_XS 25.4 -> 27.3 / 28.4; Q3_K (13.7) is bound by its unpacking.
      prefetch_ahead(blk, kBytes);
      const uint8_t* qs = blk + (kFive ? 48 : 16);
      const BlockQ8K& xb = x[b];
      U32 qh{};
      if constexpr (kFive) qh = load32(blk + 16);
      const KScales ks = kscales(blk + 4);
      const ScTab st = scale_table(ks);
      I32 si = zero();
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const U32 q = load32(qs + 32 * j);
        U32 lo = low_nibbles(q), hi = high_nibbles(q);
        if constexpr (kFive) {
          lo = or_shl4(lo, bits(qh, 2 * j, 1));
          hi = or_shl4(hi, bits(qh, 2 * j + 1, 1));
        }
        si = dot_sc_add(si, lo, load_x(xb.qs + 64 * j), scale_of(st, 2 * j));
        si = dot_sc_add(si, hi, load_x(xb.qs + 64 * j + 32), scale_of(st, 2 * j + 1));
      }
      acc = finish_q45(acc, blk, xb, si, ks);
    }
    y[r] = acc;
  }
}

// Q6_K: per half of 128 values, ql holds 64 bytes of nibbles and qh 32 bytes of 2-bit tops;
// the stored q is the value + 32, which the activation sums take back out.
inline void gemv_q6_k_rows(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows,
                           int64_t n_blocks) {
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = w + r * row_bytes + b * static_cast<int64_t>(sizeof(BlockQ6_K));
      prefetch_ahead(blk, sizeof(BlockQ6_K));
      const auto* sc = reinterpret_cast<const int8_t*>(blk + offsetof(BlockQ6_K, scales));
      const BlockQ8K& xb = x[b];
      I32 si = zero();
      for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = blk + 64 * h;
        const U32 qh = load32(blk + offsetof(BlockQ6_K, qh) + 32 * h);
        const U32 l0 = load32(ql), l1 = load32(ql + 32);
        const int8_t* xs = xb.qs + 128 * h;
        const Sc6Tab st = scale6_table(sc + 8 * h);
        si = dot_sc_add(si, or_shl4(low_nibbles(l0), bits(qh, 0, 3)), load_x(xs), scale6_of(st, 0));
        si = dot_sc_add(si, or_shl4(low_nibbles(l1), bits(qh, 2, 3)), load_x(xs + 32), scale6_of(st, 1));
        si = dot_sc_add(si, or_shl4(high_nibbles(l0), bits(qh, 4, 3)), load_x(xs + 64), scale6_of(st, 2));
        si = dot_sc_add(si, or_shl4(high_nibbles(l1), bits(qh, 6, 3)), load_x(xs + 96), scale6_of(st, 3));
      }
      si = sub32x(si, scale_sums(xb.bsums, sc));  // the stored q's offset of 32
      acc = kq_finish(acc, half(blk + offsetof(BlockQ6_K, d)), 0.0f, xb.d, hsum(si), 0);
    }
    y[r] = acc;
  }
}

// Q2_K / Q3_K: per half h of 128 values, 32 bytes of 2-bit fields; value 128h + 32j + l
// has field j of qs[32h + l], and each 16 values a scale.
//   Q3_K (hmask[32], qs[64], scales[12], d): u = field | bit 4h + j of hmask[l] << 2 (0..7,
//        unsigned for maddubs) stands for u - 4, the 4 taken out through the 16-value sums;
//        the scales are 6 bits less 32 (q3k_scales).
//   Q2_K (scales[16], qs[64], d, dmin): u = the field; scales[g] holds the scale (low
//        nibble) and the min (high nibble), the mins taken out as Q4_K's.
template <bool kThree>
void gemv_low_k(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows, int64_t n_blocks) {
  constexpr int64_t kBytes = kThree ? 110 : 84, kQs = kThree ? 32 : 16, kD = kThree ? 108 : 80;
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = w + r * row_bytes + b * kBytes;
      prefetch_ahead(blk, kBytes);
      int8_t sc[16], mn[16];  // mn: Q2_K's mins
      if constexpr (kThree) {
        q3k_scales(blk + 96, sc);
      } else {
        uint32_t words[4], sw[4], mw[4];
        std::memcpy(words, blk, 16);
        for (int i = 0; i < 4; ++i) sw[i] = words[i] & 0x0f0f0f0fu, mw[i] = (words[i] >> 4) & 0x0f0f0f0fu;
        std::memcpy(sc, sw, 16);
        std::memcpy(mn, mw, 16);
      }
      const BlockQ8K& xb = x[b];
      const U32 hm = kThree ? load32(blk) : U32{};
      I32 si = zero();
      for (int h = 0; h < 2; ++h) {
        const U32 q = load32(blk + kQs + 32 * h);
        const Sc6Tab st = scale6_table(sc + 8 * h);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          U32 u = bits(q, 2 * j, 3);
          if constexpr (kThree) u = or_shl2(u, bits(hm, 4 * h + j, 1));
          si = dot_sc_add(si, u, load_x(xb.qs + 128 * h + 32 * j), scale6_of(st, j));
        }
      }
      if constexpr (kThree) {
        si = sub4x(si, scale_sums(xb.bsums, sc));  // the stored u's offset of 4
        acc = kq_finish(acc, half(blk + kD), 0.0f, xb.d, hsum(si), 0);
      } else {
        acc = kq_finish(acc, half(blk + kD), half(blk + kD + 2), xb.d, hsum(si), hsum(scale_sums(xb.bsums, mn)));
      }
    }
    y[r] = acc;
  }
}

// IQ4_XS: per sub-block of 32, IQ4_NL's lookup and signed dot products (ops/qgemv-inl.h)
// scaled in the pairwise add; the super-block's int32 sum is exact and its float finish is
// kq_finish, so every table gives ref::gemv_iq4_xs's bits.
inline void gemv_iq4_xs_rows(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, float* y, int64_t rows,
                             int64_t n_blocks) {
  constexpr int64_t kBytes = 136;
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = w + r * row_bytes + b * kBytes;
      prefetch_ahead(blk, kBytes);
      I32 si = zero();
#pragma GCC unroll 8
      for (int s = 0; s < 8; ++s)
        si = add(si, qgemv_detail::scaled_dot(qgemv_detail::load_iq4nl(blk + 8 + 16 * s), x[b].qs + 32 * s,
                                              iq4xs_scale(blk, s)));
      acc = kq_finish(acc, half(blk), 0.0f, x[b].d, hsum(si), 0);
    }
    y[r] = acc;
  }
}
#endif

}  // namespace qgemv_k_detail

// The table's entries: the SIMD kernels above where the table has them, else the reference.
#if defined(__AVX2__) || defined(__SSSE3__) || defined(__ARM_NEON)
constexpr auto gemv_q2_k = qgemv_k_detail::gemv_low_k<false>;
constexpr auto gemv_q3_k = qgemv_k_detail::gemv_low_k<true>;
constexpr auto gemv_q4_k = qgemv_k_detail::gemv_q45_k<false>;
constexpr auto gemv_q5_k = qgemv_k_detail::gemv_q45_k<true>;
constexpr auto gemv_q6_k = qgemv_k_detail::gemv_q6_k_rows;
constexpr auto gemv_iq4_xs = qgemv_k_detail::gemv_iq4_xs_rows;
#else
constexpr auto gemv_q2_k = ref::gemv_q2_k;
constexpr auto gemv_q3_k = ref::gemv_q3_k;
constexpr auto gemv_q4_k = ref::gemv_q4_k;
constexpr auto gemv_q5_k = ref::gemv_q5_k;
constexpr auto gemv_q6_k = ref::gemv_q6_k;
constexpr auto gemv_iq4_xs = ref::gemv_iq4_xs;
#endif

}  // namespace altup::ops::ALTUP_ISA

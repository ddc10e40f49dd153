// SIMD helpers shared by the kernels, compiled once per instruction set. Included only by
// ops/isa_*.cpp, after they define ALTUP_ISA (a namespace name, e.g. isa_avx512) and
// ALTUP_ARCH (an xsimd architecture). Everything lives in namespace altup::ops::ALTUP_ISA,
// so code built with AVX-512 flags can never be linked in place of baseline code.
// (No include guard: one inclusion per translation unit.)
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "runtime/dtype.h"

namespace altup::ops::ALTUP_ISA {

using A = ALTUP_ARCH;
using V = xsimd::batch<float, A>;
constexpr int64_t L = static_cast<int64_t>(V::size);

inline V loadu(const float* p) { return V::load_unaligned(p); }
inline void storeu(float* p, const V& v) { v.store_unaligned(p); }

// L half-precision values to f32. F16C / AVX-512 / NEON convert in hardware; SSE4.2 has no
// conversion instruction, so it decodes lane by lane.
// (Templates so that `if constexpr` discards the branches of the other vector widths.)
template <class B = V>
inline B load_f16(const uint16_t* p) {
  constexpr auto L = static_cast<int64_t>(B::size);
#if defined(__AVX512F__)
  if constexpr (L == 16) return B(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
#endif
#if defined(__F16C__)
  if constexpr (L == 8) return B(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#endif
#if defined(__aarch64__)
  if constexpr (L == 4) {
    uint16x4_t h = vld1_u16(p);
    return B(vcvt_f32_f16(vreinterpret_f16_u16(h)));
  }
#endif
  alignas(64) float tmp[L];
  for (int64_t k = 0; k < L; ++k) tmp[k] = fp16_to_fp32(p[k]);
  return B::load_aligned(tmp);
}

// L bfloat16 values to f32: the bf16 bits are the high half of the f32.
template <class B = V>
inline B load_bf16(const uint16_t* p) {
  constexpr auto L = static_cast<int64_t>(B::size);
#if defined(__AVX512F__)
  if constexpr (L == 16) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return B(_mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
#endif
#if defined(__AVX2__)
  if constexpr (L == 8) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return B(_mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
#endif
#if defined(__SSE4_1__)
  if constexpr (L == 4) {
    __m128i w = _mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    return B(_mm_castsi128_ps(_mm_slli_epi32(w, 16)));
  }
#endif
#if defined(__aarch64__)
  if constexpr (L == 4) return B(vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)));
#endif
  alignas(64) float tmp[L];
  for (int64_t k = 0; k < L; ++k) tmp[k] = bf16_to_fp32(p[k]);
  return B::load_aligned(tmp);
}

// L signed bytes to f32 (exact).
template <class B = V>
inline B load_i8(const int8_t* p) {
  constexpr auto L = static_cast<int64_t>(B::size);
#if defined(__AVX512F__)
  if constexpr (L == 16)
    return B(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))));
#endif
#if defined(__AVX2__)
  if constexpr (L == 8)
    return B(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
#endif
#if defined(__SSE4_1__)
  if constexpr (L == 4) {
    int32_t four;
    std::memcpy(&four, p, 4);
    return B(_mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_cvtsi32_si128(four))));
  }
#endif
#if defined(__aarch64__)
  if constexpr (L == 4) {
    uint32_t four;
    std::memcpy(&four, p, 4);
    const int16x8_t h = vmovl_s8(vcreate_s8(four));
    return B(vcvtq_f32_s32(vmovl_s16(vget_low_s16(h))));
  }
#endif
  alignas(64) float tmp[L];
  for (int64_t k = 0; k < L; ++k) tmp[k] = static_cast<float>(p[k]);
  return B::load_aligned(tmp);
}

inline float reduce_sum(const V& v) { return xsimd::hadd(v); }

inline float reduce_max(const V& v) {
  alignas(64) float tmp[L];
  v.store_aligned(tmp);
  float m = tmp[0];
  for (int64_t k = 1; k < L; ++k) m = tmp[k] > m ? tmp[k] : m;
  return m;
}

}  // namespace altup::ops::ALTUP_ISA

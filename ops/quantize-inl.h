// Activation rows to 8-bit blocks (ops/qgemv.h: BlockQ8x, BlockQ8K) per instruction set,
// with the scalar quantizer's bits exactly: the block's amax by compare-and-select (a NaN
// is skipped, as std::fmax skips it), the same scalar d and 1 / d, and roundf's rounding
// (half away from zero) rebuilt from truncation: t = trunc(v), plus the sign of v when
// |v - t| >= 0.5 (v - t is exact for |v| < 2^23). No include guard (see simd-inl.h).
#include "ops/qgemv.h"

namespace altup::ops::ALTUP_ISA {

namespace quantize_detail {
// n (a multiple of L) values to int8 with one scale; returns d.
inline float quantize_block(const float* x, int8_t* q, int64_t n) {
  V amax(0.0f);
  for (int64_t i = 0; i < n; i += L) {
    const V a = xsimd::abs(loadu(x + i));
    amax = xsimd::select(a > amax, a, amax);
  }
  const float d = reduce_max(amax) / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
  const V vid(id), half(0.5f), one(1.0f), minus_one(-1.0f), zero(0.0f);
  alignas(64) int32_t r[L];
  for (int64_t i = 0; i < n; i += L) {
    const V v = loadu(x + i) * vid, t = xsimd::trunc(v);
    const V step = xsimd::select(xsimd::abs(v - t) >= half, xsimd::select(v < zero, minus_one, one), zero);
    xsimd::batch_cast<int32_t>(t + step).store_aligned(r);  // whole numbers in [-127, 127]
    for (int64_t k = 0; k < L; ++k) q[i + k] = static_cast<int8_t>(r[k]);
  }
  return d;
}
}  // namespace quantize_detail

inline void quantize_q8x(const float* x, BlockQ8x* y, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    y[b].d = q8x_scale(quantize_detail::quantize_block(x + b * 32, y[b].qs, 32));
    set_sum(y[b]);
  }
}

inline void quantize_q8k(const float* x, BlockQ8K* y, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b) {
    y[b].d = quantize_detail::quantize_block(x + b * 256, y[b].qs, 256);
    set_bsums(y[b]);
  }
}

}  // namespace altup::ops::ALTUP_ISA

// SIMD RoPE, NeoX rotate-half, on one head. No include guard (see simd-inl.h).
namespace altup::ops::ALTUP_ISA {

// (a, b) = (x[i], x[i + h]) -> (a cos - b sin, b cos + a sin), h = hd / 2.
inline void rope_neox(float* x, const float* cos, const float* sin, int64_t hd) {
  const int64_t h = hd / 2;
  float* lo = x;
  float* hi = x + h;
  int64_t i = 0;
  for (; i + L <= h; i += L) {
    const V a = loadu(lo + i), b = loadu(hi + i), c = loadu(cos + i), s = loadu(sin + i);
    storeu(lo + i, xsimd::fms(a, c, b * s));
    storeu(hi + i, xsimd::fma(a, s, b * c));
  }
  for (; i < h; ++i) {
    const float a = lo[i], b = hi[i];
    lo[i] = a * cos[i] - b * sin[i];
    hi[i] = b * cos[i] + a * sin[i];
  }
}

}  // namespace altup::ops::ALTUP_ISA

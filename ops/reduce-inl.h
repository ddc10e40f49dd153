// SIMD reductions. Four accumulators hide the FMA latency. No include guard (see simd-inl.h).
namespace altup::ops::ALTUP_ISA {

inline float dot(const float* a, const float* b, int64_t n) {
  V s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    s0 = xsimd::fma(loadu(a + i), loadu(b + i), s0);
    s1 = xsimd::fma(loadu(a + i + L), loadu(b + i + L), s1);
    s2 = xsimd::fma(loadu(a + i + 2 * L), loadu(b + i + 2 * L), s2);
    s3 = xsimd::fma(loadu(a + i + 3 * L), loadu(b + i + 3 * L), s3);
  }
  for (; i + L <= n; i += L) s0 = xsimd::fma(loadu(a + i), loadu(b + i), s0);
  float s = reduce_sum((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline float sum_squares(const float* x, int64_t n) { return dot(x, x, n); }

inline float sum(const float* x, int64_t n) {
  V s0(0.0f), s1(0.0f);
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    s0 += loadu(x + i);
    s1 += loadu(x + i + L);
  }
  for (; i + L <= n; i += L) s0 += loadu(x + i);
  float s = reduce_sum(s0 + s1);
  for (; i < n; ++i) s += x[i];
  return s;
}

}  // namespace altup::ops::ALTUP_ISA

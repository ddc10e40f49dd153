// SIMD softmax over one row: subtract the max, exponentiate, normalize. No include guard.
namespace altup::ops::ALTUP_ISA {

inline void softmax(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  float m = x[0];
  int64_t i = 0;
  if (n >= L) {
    V vm = loadu(x);
    for (i = L; i + L <= n; i += L) vm = xsimd::max(vm, loadu(x + i));
    m = reduce_max(vm);
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  const V vmax(m);
  V vs(0.0f);
  for (i = 0; i + L <= n; i += L) {
    const V e = xsimd::exp(loadu(x + i) - vmax);
    storeu(y + i, e);
    vs += e;
  }
  float s = reduce_sum(vs);
  for (; i < n; ++i) {
    y[i] = std::exp(x[i] - m);
    s += y[i];
  }
  scale(y, 1.0f / s, y, n);
}

}  // namespace altup::ops::ALTUP_ISA

// SIMD RMSNorm over one row. No include guard (see simd-inl.h).
namespace altup::ops::ALTUP_ISA {

inline void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  if (n == 0) return;
  const float r = 1.0f / std::sqrt(sum_squares(x, n) / static_cast<float>(n) + eps);
  const V vr(r);
  int64_t i = 0;
  if (w) {
    for (; i + L <= n; i += L) storeu(y + i, loadu(x + i) * vr * loadu(w + i));
    for (; i < n; ++i) y[i] = x[i] * r * w[i];
  } else {
    for (; i + L <= n; i += L) storeu(y + i, loadu(x + i) * vr);
    for (; i < n; ++i) y[i] = x[i] * r;
  }
}

}  // namespace altup::ops::ALTUP_ISA

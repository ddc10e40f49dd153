// SIMD AltUp mixing over a ring of K d-sized blocks (one token). Each vector-wide column of
// all K blocks is loaded before any is written, so the output may be the input ring.
// No include guard (see simd-inl.h).
namespace altup::ops::ALTUP_ISA {

constexpr int kMaxBlocks = 8;

inline void altup_predict(const float* const* x, float* const* out, const float* p, int K, int64_t n) {
  V xs[kMaxBlocks];
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    for (int k = 0; k < K; ++k) xs[k] = loadu(x[k] + i);
    for (int r = 0; r < K; ++r) {
      V acc = V(p[r * K]) * xs[0];
      for (int k = 1; k < K; ++k) acc = xsimd::fma(V(p[r * K + k]), xs[k], acc);
      storeu(out[r] + i, acc);
    }
  }
  float xt[kMaxBlocks];
  for (; i < n; ++i) {
    for (int k = 0; k < K; ++k) xt[k] = x[k][i];
    for (int r = 0; r < K; ++r) {
      float acc = p[r * K] * xt[0];
      for (int k = 1; k < K; ++k) acc += p[r * K + k] * xt[k];
      out[r][i] = acc;
    }
  }
}

inline void altup_correct(float* const* xhat, const float* y, const float* g, int K, int j, int64_t n) {
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const V delta = loadu(y + i) - loadu(xhat[j] + i);  // before xhat[j] itself is updated
    for (int k = 0; k < K; ++k) storeu(xhat[k] + i, xsimd::fma(V(g[k]), delta, loadu(xhat[k] + i)));
  }
  for (; i < n; ++i) {
    const float delta = y[i] - xhat[j][i];
    for (int k = 0; k < K; ++k) xhat[k][i] += g[k] * delta;
  }
}

}  // namespace altup::ops::ALTUP_ISA

// SIMD elementwise kernels (see ops/elementwise.h for the math). No include guard: included
// once per instruction set by ops/isa_*.cpp, after ops/simd-inl.h.
namespace altup::ops::ALTUP_ISA {

inline void add(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, loadu(a + i) + loadu(b + i));
  for (; i < n; ++i) y[i] = a[i] + b[i];
}

inline void mul(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, loadu(a + i) * loadu(b + i));
  for (; i < n; ++i) y[i] = a[i] * b[i];
}

inline void scale(const float* x, float s, float* y, int64_t n) {
  const V vs(s);
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, loadu(x + i) * vs);
  for (; i < n; ++i) y[i] = x[i] * s;
}

inline void axpy(float a, const float* x, float* y, int64_t n) {
  const V va(a);
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, xsimd::fma(va, loadu(x + i), loadu(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

template <bool kBf16>
inline void axpy_half(float a, const uint16_t* x, float* y, int64_t n) {
  const V va(a);
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, xsimd::fma(va, kBf16 ? load_bf16(x + i) : load_f16(x + i), loadu(y + i)));
  for (; i < n; ++i) y[i] += a * (kBf16 ? bf16_to_fp32(x[i]) : fp16_to_fp32(x[i]));
}
inline void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) { axpy_half<false>(a, x, y, n); }
inline void axpy_bf16(float a, const uint16_t* x, float* y, int64_t n) { axpy_half<true>(a, x, y, n); }
// x = s ⊙ q: the product of an f16-born scale and a small integer is exact in f32, so this is
// axpy on the dequantized row, bit for bit.
inline void axpy_i8s(float a, const int8_t* q, const float* s, float* y, int64_t n) {
  const V va(a);
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, xsimd::fma(va, loadu(s + i) * load_i8(q + i), loadu(y + i)));
  for (; i < n; ++i) y[i] += a * (s[i] * static_cast<float>(q[i]));
}
// x = s ⊙ q - t (Q4_K / Q5_K: (d · sc) · q - (dmin · m)): s · q is exact, so the one rounding
// is the subtraction's, as in the decoder.
inline void axpy_i8so(float a, const int8_t* q, const float* s, const float* t, float* y, int64_t n) {
  const V va(a);
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, xsimd::fma(va, loadu(s + i) * load_i8(q + i) - loadu(t + i), loadu(y + i)));
  for (; i < n; ++i) y[i] += a * (s[i] * static_cast<float>(q[i]) - t[i]);
}

// The activations, one vector at a time; the scalar tail uses the same formulas in float.
inline V silu_v(const V& x) { return x / (V(1.0f) + xsimd::exp(-x)); }
// 0.5 * (1 + tanh(u)) = 1 / (1 + exp(-2u)): the same value through exp, which xsimd computes
// about twice as fast as tanh.
inline V gelu_tanh_v(const V& x) {
  const V c2(2.0f * 0.7978845608028654f), k(0.044715f);
  return x / (V(1.0f) + xsimd::exp(-c2 * xsimd::fma(k * x * x, x, x)));
}
inline V gelu_erf_v(const V& x) { return V(0.5f) * x * (V(1.0f) + xsimd::erf(x * V(0.7071067811865476f))); }

inline float silu_s(float x) { return x / (1.0f + std::exp(-x)); }
inline float gelu_tanh_s(float x) {
  return 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}
inline float gelu_erf_s(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f)); }

template <class FV, class FS>
inline void map(const float* x, float* y, int64_t n, FV fv, FS fs) {
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, fv(loadu(x + i)));
  for (; i < n; ++i) y[i] = fs(x[i]);
}

inline void act(Act a, const float* x, float* y, int64_t n) {
  switch (a) {
    case Act::Silu: return map(x, y, n, silu_v, silu_s);
    case Act::GeluTanh: return map(x, y, n, gelu_tanh_v, gelu_tanh_s);
    case Act::GeluErf: return map(x, y, n, gelu_erf_v, gelu_erf_s);
  }
}

template <class FV, class FS>
inline void glu_with(const float* g, const float* u, float* y, int64_t n, FV fv, FS fs) {
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, fv(loadu(g + i)) * loadu(u + i));
  for (; i < n; ++i) y[i] = fs(g[i]) * u[i];
}

inline void glu(Act a, const float* g, const float* u, float* y, int64_t n) {
  switch (a) {
    case Act::Silu: return glu_with(g, u, y, n, silu_v, silu_s);
    case Act::GeluTanh: return glu_with(g, u, y, n, gelu_tanh_v, gelu_tanh_s);
    case Act::GeluErf: return glu_with(g, u, y, n, gelu_erf_v, gelu_erf_s);
  }
}

inline void softcap(const float* x, float cap, float* y, int64_t n) {
  const V vc(cap), inv(1.0f / cap);
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, vc * xsimd::tanh(loadu(x + i) * inv));
  for (; i < n; ++i) y[i] = cap * std::tanh(x[i] * (1.0f / cap));
}

}  // namespace altup::ops::ALTUP_ISA

// SIMD matrix-vector product y = W·x for one token (decode). Decode is bound by reading W,
// so the kernel streams W once: four rows at a time share each load of x and keep four
// independent FMA chains in flight. No include guard (see simd-inl.h).
namespace altup::ops::ALTUP_ISA {

inline V load_w(const float* p) { return loadu(p); }
inline V load_w(const uint16_t* p, bool bf16) { return bf16 ? load_bf16(p) : load_f16(p); }
inline float scalar_w(float v, bool) { return v; }
inline float scalar_w(uint16_t v, bool bf16) { return bf16 ? bf16_to_fp32(v) : fp16_to_fp32(v); }

template <class W>
inline V load_any(const W* p, bool bf16) {
  if constexpr (sizeof(W) == 4) {
    (void)bf16;
    return loadu(reinterpret_cast<const float*>(p));
  } else {
    return load_w(p, bf16);
  }
}

template <class W>
inline void gemv_rows(const W* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n, bool bf16) {
  const int64_t nv = n - n % L;  // vector part of each row
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const W* w0 = w + r * ld;
    const W* w1 = w0 + ld;
    const W* w2 = w1 + ld;
    const W* w3 = w2 + ld;
    V s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    for (int64_t i = 0; i < nv; i += L) {
      const V xv = loadu(x + i);
      s0 = xsimd::fma(load_any(w0 + i, bf16), xv, s0);
      s1 = xsimd::fma(load_any(w1 + i, bf16), xv, s1);
      s2 = xsimd::fma(load_any(w2 + i, bf16), xv, s2);
      s3 = xsimd::fma(load_any(w3 + i, bf16), xv, s3);
    }
    float t0 = reduce_sum(s0), t1 = reduce_sum(s1), t2 = reduce_sum(s2), t3 = reduce_sum(s3);
    for (int64_t i = nv; i < n; ++i) {
      t0 += scalar_w(w0[i], bf16) * x[i];
      t1 += scalar_w(w1[i], bf16) * x[i];
      t2 += scalar_w(w2[i], bf16) * x[i];
      t3 += scalar_w(w3[i], bf16) * x[i];
    }
    y[r] = t0;
    y[r + 1] = t1;
    y[r + 2] = t2;
    y[r + 3] = t3;
  }
  for (; r < rows; ++r) {
    const W* wr = w + r * ld;
    V s(0.0f);
    for (int64_t i = 0; i < nv; i += L) s = xsimd::fma(load_any(wr + i, bf16), loadu(x + i), s);
    float t = reduce_sum(s);
    for (int64_t i = nv; i < n; ++i) t += scalar_w(wr[i], bf16) * x[i];
    y[r] = t;
  }
}

inline void gemv_f32(const float* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n) {
  gemv_rows(w, ld, x, y, rows, n, false);
}
inline void gemv_f16(const uint16_t* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n) {
  gemv_rows(w, ld, x, y, rows, n, false);
}
inline void gemv_bf16(const uint16_t* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n) {
  gemv_rows(w, ld, x, y, rows, n, true);
}

}  // namespace altup::ops::ALTUP_ISA

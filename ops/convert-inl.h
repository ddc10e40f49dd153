// SIMD half-precision to f32 conversion. No include guard (see simd-inl.h).
namespace altup::ops::ALTUP_ISA {

inline void cvt_f16(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, load_f16(x + i));
  for (; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

inline void cvt_bf16(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + L <= n; i += L) storeu(y + i, load_bf16(x + i));
  for (; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

}  // namespace altup::ops::ALTUP_ISA

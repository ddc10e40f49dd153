// SIMD matrix-vector product y = W·x for one token (decode). Decode is bound by reading W,
// so the kernel streams W once, row after row. No include guard (see simd-inl.h).
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

// Decode streams W one row at a time, and a hardware stream prefetcher stops at each 4 KiB
// page (a 2048-wide f16 row is exactly one), so the stream stalled at every row start. The
// GEMVs here and in qgemv-inl.h / qgemv_k-inl.h therefore prefetch ahead of what they read.
// First at 1024 bytes (2 Sapphire-Rapids-class cores: bench_ops' cold f16 GEMV 24.6 ->
// 25.6-28.3 GB/s, Q8_0 17.7 -> 28.4; decode of a d = 2048 model, `altup bench -p 64 -n 64
// -r 3`, f16 58.6 -> 68.0 tokens/s, Q8_0 81.6 -> 116.3). Then at 4096, a page ahead: more
// requests in flight while a row's page is being opened. Decode of the d = 2048 models of
// bench/compare.py, `altup bench -p 0 -n 64 -r 5 -t 2`, 1024 and 4096 in turn, three rounds
// (medians, the same machine, 2026-11-24): Q8_0 133 -> 184 tokens/s, Q4_0 260 -> 301, Q4_K_M 298
// -> 355, Q5_K_M 226 -> 283, Q6_K 182 -> 260, f16 72 -> 78, bf16 79 -> 80. (bench_ops' cold
// f16 / bf16 GEMV, one 8192 x 2048 matrix, measured 4096 lower, 23 against 27 GB/s; decode
// is what counts.) 2048 and 8192 gave Q8_0 157 / 189 in one round: a page is most of it.
constexpr int64_t kPrefetchBytes = 4096;
// The cache lines of [p, p + bytes), kAhead bytes further on.
template <int64_t kAhead = kPrefetchBytes>
inline void prefetch_ahead(const void* p, int64_t bytes) {
  const char* ahead = static_cast<const char*>(p) + kAhead;
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(ahead + b);
}
// The four-row f32 GEMV below streams four rows at once; it keeps 1024 bytes per row (its
// decode measured the same or slower further ahead: 44.4 tokens/s at 1024, 42.9 at 4096,
// 43.7 at 8192, and four streams a page ahead would fill much of a 32 KiB L1).
constexpr int64_t kPrefetchBytesRows4 = 1024;

// One row at a time: W streamed front to back, four independent FMA chains (4 x L weights
// per step) hide the FMA latency. For f16 / bf16 weights this single sequential stream
// measured 20-60% more GB/s than the four-row form below, cold and warm (bench/bench_ops,
// development machine); for f32 the two were equal from memory and the four-row form ahead
// in cache, so f32 keeps that one.
template <class W>
inline float gemv_row(const W* w, const float* x, int64_t n, bool bf16) {
  V s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    if constexpr (sizeof(W) == 2) prefetch_ahead(w + i, 4 * L * 2);
    s0 = xsimd::fma(load_any(w + i, bf16), loadu(x + i), s0);
    s1 = xsimd::fma(load_any(w + i + L, bf16), loadu(x + i + L), s1);
    s2 = xsimd::fma(load_any(w + i + 2 * L, bf16), loadu(x + i + 2 * L), s2);
    s3 = xsimd::fma(load_any(w + i + 3 * L, bf16), loadu(x + i + 3 * L), s3);
  }
  for (; i + L <= n; i += L) s0 = xsimd::fma(load_any(w + i, bf16), loadu(x + i), s0);
  float t = reduce_sum((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) t += scalar_w(w[i], bf16) * x[i];
  return t;
}

// Four rows side by side: each load of x serves four rows, so the kernel needs 1.25 loads per
// FMA instead of 2. That is what f32 weights want when they are cache-resident; from
// memory both forms measure the same for f32. Each of the four rows prefetches ahead as the
// other GEMVs do (a 2048-wide f32 row spans two pages): decode of the d = 2048 f32 model,
// `altup bench -p 0 -n 64 -r 5 -t 2`, old and new binaries in turn, three times each,
// 2 Sapphire-Rapids-class cores: 38.5 -> 41.3 tokens/s (medians).
// One prefetch per 64 bytes of each row: on AVX2 / SSE4.2 / NEON a vector step covers less
// than a line, and prefetching at every step asked for the same line two or four times (no
// change in that decode with the table capped at avx2 or sse4.2 here, 44.5 / 42.3 tokens/s
// before and after; fewer instructions for narrower cores).
constexpr int64_t kLineFloats = 64 / sizeof(float);
inline void gemv_rows4(const float* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n) {
  const int64_t nv = n - n % L;  // vector part of each row
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* w0 = w + r * ld;
    const float* w1 = w0 + ld;
    const float* w2 = w1 + ld;
    const float* w3 = w2 + ld;
    V s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    for (int64_t i = 0; i < nv; i += L) {
      if (i % kLineFloats == 0) {  // once per 64 bytes of each row, whatever L is
        prefetch_ahead<kPrefetchBytesRows4>(w0 + i, 64), prefetch_ahead<kPrefetchBytesRows4>(w1 + i, 64);
        prefetch_ahead<kPrefetchBytesRows4>(w2 + i, 64), prefetch_ahead<kPrefetchBytesRows4>(w3 + i, 64);
      }
      const V xv = loadu(x + i);
      s0 = xsimd::fma(loadu(w0 + i), xv, s0);
      s1 = xsimd::fma(loadu(w1 + i), xv, s1);
      s2 = xsimd::fma(loadu(w2 + i), xv, s2);
      s3 = xsimd::fma(loadu(w3 + i), xv, s3);
    }
    float t0 = reduce_sum(s0), t1 = reduce_sum(s1), t2 = reduce_sum(s2), t3 = reduce_sum(s3);
    for (int64_t i = nv; i < n; ++i) {
      t0 += w0[i] * x[i];
      t1 += w1[i] * x[i];
      t2 += w2[i] * x[i];
      t3 += w3[i] * x[i];
    }
    y[r] = t0;
    y[r + 1] = t1;
    y[r + 2] = t2;
    y[r + 3] = t3;
  }
  for (; r < rows; ++r) {
    const float* wr = w + r * ld;
    V s(0.0f);
    for (int64_t i = 0; i < nv; i += L) s = xsimd::fma(loadu(wr + i), loadu(x + i), s);
    float t = reduce_sum(s);
    for (int64_t i = nv; i < n; ++i) t += wr[i] * x[i];
    y[r] = t;
  }
}

template <class W>
inline void gemv_rows(const W* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n, bool bf16) {
  for (int64_t r = 0; r < rows; ++r) y[r] = gemv_row(w + r * ld, x, n, bf16);
}

inline void gemv_f32(const float* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n) {
  gemv_rows4(w, ld, x, y, rows, n);
}
inline void gemv_f16(const uint16_t* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n) {
  gemv_rows(w, ld, x, y, rows, n, false);
}
inline void gemv_bf16(const uint16_t* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n) {
  gemv_rows(w, ld, x, y, rows, n, true);
}

}  // namespace altup::ops::ALTUP_ISA

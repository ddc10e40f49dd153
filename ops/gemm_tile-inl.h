// SIMD C (+)= A·B for small row-major f32 tiles (ops/gemm_tile.h). No include guard (see
// simd-inl.h).
//
// B is taken a strip of 2 vectors' columns at a time, copied kStripRows rows at a time into
// a contiguous buffer: a caller's B may have a leading dimension of kilobytes (a transposed
// key block, the value cache), whose rows would fall into the same few cache sets, and every
// row group of A then reads the strip from L1. The register tile is R <= 4 rows of A against
// the strip: per step of p, two loads of B and R broadcasts of A feed 2R FMAs, 8 accumulators
// for R = 4, which is what two FMA ports with a four-cycle latency need in flight. Every C
// value is one chain of FMAs over p in order (chunks continue it through C), so its bits do
// not depend on which rows or columns share its tile, nor on how a caller splits rows between
// threads.
namespace altup::ops::ALTUP_ISA {

constexpr int64_t kStripRows = 64;  // measured best of 32 / 64 / 128 (A's chunk stays in L1)

// C[R rows, 2L columns] (+)= A[R rows, k] · strip[k, 2L].
template <int R>
inline void gemm_tile_strip(const float* a, int64_t lda, const float* strip, float* c, int64_t ldc, int64_t k,
                            bool acc) {
  V c0[R], c1[R];
  for (int r = 0; r < R; ++r) {
    c0[r] = acc ? loadu(c + r * ldc) : V(0.0f);
    c1[r] = acc ? loadu(c + r * ldc + L) : V(0.0f);
  }
  for (int64_t p = 0; p < k; ++p) {
    const V b0 = V::load_aligned(strip + p * 2 * L), b1 = V::load_aligned(strip + p * 2 * L + L);
    for (int r = 0; r < R; ++r) {
      const V ar(a[r * lda + p]);
      c0[r] = xsimd::fma(ar, b0, c0[r]);
      c1[r] = xsimd::fma(ar, b1, c1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    storeu(c + r * ldc, c0[r]);
    storeu(c + r * ldc + L, c1[r]);
  }
}

// The columns left after the strips (fewer than 2L), straight from B.
template <int R>
inline void gemm_tile_tail(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t n,
                           int64_t k, bool acc) {
  int64_t j = 0;
  if (j + L <= n) {
    V c0[R];
    for (int r = 0; r < R; ++r) c0[r] = acc ? loadu(c + r * ldc) : V(0.0f);
    for (int64_t p = 0; p < k; ++p) {
      const V b0 = loadu(b + p * ldb);
      for (int r = 0; r < R; ++r) c0[r] = xsimd::fma(V(a[r * lda + p]), b0, c0[r]);
    }
    for (int r = 0; r < R; ++r) storeu(c + r * ldc, c0[r]);
    j += L;
  }
  for (; j < n; ++j)
    for (int r = 0; r < R; ++r) {
      float s = acc ? c[r * ldc + j] : 0.0f;
      for (int64_t p = 0; p < k; ++p) s += a[r * lda + p] * b[p * ldb + j];
      c[r * ldc + j] = s;
    }
}

// Rows of A in groups of 4, then the 1-3 left.
template <class F>
inline void gemm_tile_row_groups(int64_t m, F&& fn) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) fn(std::integral_constant<int, 4>{}, i);
  switch (m - i) {
    case 3: fn(std::integral_constant<int, 3>{}, i); break;
    case 2: fn(std::integral_constant<int, 2>{}, i); break;
    case 1: fn(std::integral_constant<int, 1>{}, i); break;
    default: break;
  }
}

inline void gemm_tile(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m,
                      int64_t n, int64_t k, bool accumulate) {
  if (k <= 0) {  // an empty sum
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    return;
  }
  alignas(64) float strip[kStripRows * 2 * L];  // [kStripRows, 2L]
  const int64_t n_strips = n / (2 * L);
  // p in chunks outermost: A's chunk [m, kStripRows] stays in L1 while every strip passes.
  for (int64_t p0 = 0; p0 < k; p0 += kStripRows) {
    const int64_t kp = std::min(kStripRows, k - p0);
    const bool acc = accumulate || p0 > 0;
    for (int64_t j = 0; j < n_strips * 2 * L; j += 2 * L) {
      for (int64_t p = 0; p < kp; ++p) {
        storeu(strip + p * 2 * L, loadu(b + (p0 + p) * ldb + j));
        storeu(strip + p * 2 * L + L, loadu(b + (p0 + p) * ldb + j + L));
      }
      gemm_tile_row_groups(m, [&](auto rows, int64_t i) {
        gemm_tile_strip<decltype(rows)::value>(a + i * lda + p0, lda, strip, c + i * ldc + j, ldc, kp, acc);
      });
    }
  }
  const int64_t j = n_strips * 2 * L;
  if (j < n)
    gemm_tile_row_groups(m, [&](auto rows, int64_t i) {
      gemm_tile_tail<decltype(rows)::value>(a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, n - j, k, accumulate);
    });
}

}  // namespace altup::ops::ALTUP_ISA

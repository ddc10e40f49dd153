// Q4_0 / Q8_0 prefill on AVX2 (the AVX2 and both AVX-512 tables): ops/qgemv.h's gemm_q4_0 and
// gemm_q8_0 by panels of 8 weight rows, repacked once per call (for all M tokens) so that
// each 32-bit lane of a vector belongs to one row. Per block of 32 the panel holds the 8
// rows' scales as floats and 8 steps of 32 bytes; step s has, for row r, its values
// 4s .. 4s + 3 in bytes 4r .. 4r + 3. A token's 4 activation bytes, broadcast, then meet all
// 8 rows in one maddubs (one vpdpbusd on the avx512_vnni table, summing to int32 at once):
//   Q4_0: the values as unsigned nibbles (0..15); 8 steps add up exactly in int16
//         (8 x 2 x 15 x 127 < 2^15), one pairwise add gives each row's int32 sum, and the
//         offset of 8 comes out through the activation block's sum;
//   Q8_0: signed values, so maddubs takes |w| and x with w's sign (pairs fit int16), and
//         each step is widened to int32 at once.
// The float steps are the scalar reference's, per row and block in order,
// sum + (d_w * d_x) * dot, so both give ref::gemv_q4_0 / gemv_q8_0's bits.
// No include guard (see simd-inl.h).
#if defined(__AVX2__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "ops/qgemv.h"
#include "runtime/dtype.h"

namespace altup::ops::ALTUP_ISA {

// What the panel GEMMs (this file's and ops/qgemm_kpanel-inl.h's, included after it) share.
namespace panel_util {
// Lanes [0, rows) of token t's accumulator to row t of y.
template <int T>
inline void store_rows(const __m256 (&acc)[T], float* y, int64_t ldy, int64_t rows) {
  for (int t = 0; t < T; ++t) {
    alignas(32) float out[8];
    _mm256_store_ps(out, acc[t]);
    std::copy_n(out, rows, y + t * ldy);
  }
}

// Each 8 weight rows packed once (kPack, into `elems` Panel values kept per thread), then
// every token against them, in fours and then ones (kTokens4, kTokens1).
template <class Panel, class X, auto kPack, auto kTokens4, auto kTokens1>
void run_panels(const uint8_t* w, int64_t row_bytes, const X* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                int64_t n_blocks, int64_t elems) {
  thread_local std::vector<Panel> store;
  store.resize(static_cast<size_t>(std::max<int64_t>(elems, 1)));
  Panel* panel = store.data();
  for (int64_t r = 0; r < rows; r += 8) {
    const int64_t pr = std::min<int64_t>(8, rows - r);
    kPack(w + r * row_bytes, row_bytes, pr, n_blocks, panel);
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) kTokens4(panel, x + m * n_blocks, n_blocks, y + m * ldy + r, ldy, pr);
    for (; m < M; ++m) kTokens1(panel, x + m * n_blocks, n_blocks, y + m * ldy + r, ldy, pr);
  }
}
}  // namespace panel_util

namespace qgemm_q8_detail {

#if defined(__AVX512VNNI__)
constexpr bool kVnni = true;  // vpdpbusd: each step's sums go straight to int32
#else
constexpr bool kVnni = false;
#endif

constexpr int64_t kPanelBlockBytes = 8 * 4 + 8 * 32;  // 8 float scales, 8 steps of 32 bytes

// Rows [0, rows) (rows <= 8; missing rows: zero) of W -> the panel layout above.
template <bool kQ8>
inline void pack_panel(const uint8_t* w, int64_t row_bytes, int64_t rows, int64_t n_blocks, uint8_t* panel) {
  using Block = std::conditional_t<kQ8, BlockQ8_0, BlockQ4_0>;
  for (int64_t b = 0; b < n_blocks; ++b) {
    uint8_t* out = panel + b * kPanelBlockBytes;
    float d[8] = {};
    uint8_t q[8][32] = {};  // row r's 32 values, in element order
    for (int64_t r = 0; r < rows; ++r) {
      Block blk;
      std::memcpy(&blk, w + r * row_bytes + b * static_cast<int64_t>(sizeof blk), sizeof blk);
      d[r] = _cvtsh_ss(blk.d);
      if constexpr (kQ8) {
        std::memcpy(q[r], blk.qs, 32);
      } else {
        for (int j = 0; j < 16; ++j) {  // element j: low nibble of byte j; j + 16: its high nibble
          q[r][j] = blk.qs[j] & 0x0F;
          q[r][j + 16] = blk.qs[j] >> 4;
        }
      }
    }
    std::memcpy(out, d, sizeof d);
    for (int s = 0; s < 8; ++s)
      for (int r = 0; r < 8; ++r) std::memcpy(out + 32 + 32 * s + 4 * r, &q[r][4 * s], 4);
  }
}

// T tokens against one packed panel: y[t * ldy + r] for r < rows.
template <bool kQ8, int T>
inline void panel_tokens(const uint8_t* panel, const BlockQ8x* x, int64_t n_blocks, float* y, int64_t ldy,
                         int64_t rows) {
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* pb = panel + b * kPanelBlockBytes;
    __m256i sum[T];  // Q4_0: int16 pairs; Q8_0: int32 per row
    for (int t = 0; t < T; ++t) sum[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) {
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + 32 + 32 * s));
      const __m256i wa = kQ8 ? _mm256_sign_epi8(wq, wq) : wq;  // |w| for Q8_0
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        int32_t x4;
        std::memcpy(&x4, x[t * n_blocks + b].qs + 4 * s, 4);
        const __m256i xv = _mm256_set1_epi32(x4);
        if constexpr (kQ8)
          sum[t] = qgemv_detail::dot_u8s8(sum[t], wa, _mm256_sign_epi8(xv, wq));
        else if constexpr (kVnni)
          sum[t] = qgemv_detail::dot_u8s8(sum[t], wa, xv);  // int32 at once
        else
          sum[t] = _mm256_add_epi16(sum[t], _mm256_maddubs_epi16(wa, xv));
      }
    }
    const __m256 dw = _mm256_loadu_ps(reinterpret_cast<const float*>(pb));
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const BlockQ8x& xb = x[t * n_blocks + b];
      const __m256i dot =
          kQ8 ? sum[t]
              : _mm256_sub_epi32(kVnni ? sum[t] : _mm256_madd_epi16(sum[t], ones), _mm256_set1_epi32(8 * xb.sum));
      const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(xb.d));
      acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(scale, _mm256_cvtepi32_ps(dot)));
    }
  }
  panel_util::store_rows<T>(acc, y, ldy, rows);
}

template <bool kQ8>
void gemm_panels(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                 int64_t n_blocks) {
  panel_util::run_panels<uint8_t, BlockQ8x, pack_panel<kQ8>, panel_tokens<kQ8, 4>, panel_tokens<kQ8, 1>>(
      w, row_bytes, x, M, y, ldy, rows, n_blocks, n_blocks * kPanelBlockBytes);
}

}  // namespace qgemm_q8_detail

inline void gemm_q4_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy,
                      int64_t rows, int64_t n_blocks) {
  qgemm_q8_detail::gemm_panels<false>(w, row_bytes, x, M, y, ldy, rows, n_blocks);
}

inline void gemm_q8_0(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy,
                      int64_t rows, int64_t n_blocks) {
  qgemm_q8_detail::gemm_panels<true>(w, row_bytes, x, M, y, ldy, rows, n_blocks);
}

constexpr bool kQ8GemmPanels = true;

}  // namespace altup::ops::ALTUP_ISA
#else
namespace altup::ops::ALTUP_ISA {
constexpr bool kQ8GemmPanels = false;
}  // namespace altup::ops::ALTUP_ISA
#endif

// Q4_0 / Q8_0 prefill on AVX2 (the AVX2 and both AVX-512 tables): ops/qgemv.h's gemm_q4_0 and
// gemm_q8_0 by panels of kRows weight rows (ops/qgemm_panel-inl.h: 8 in a ymm, 16 in a zmm
// on the avx512_vnni table), repacked once per call (for all M tokens) so that each 32-bit
// lane of a vector belongs to one row. Per block of 32 the panel holds the rows' scales as
// floats and 8 steps of 4 x kRows bytes; step s has, for row r, its values 4s .. 4s + 3 in
// bytes 4r .. 4r + 3. A token's 4 activation bytes, broadcast, then meet every row in one
// maddubs (one vpdpbusd on the avx512_vnni table, summing to int32 at once):
//   Q4_0: the values as unsigned nibbles (0..15); 8 steps add up exactly in int16
//         (8 x 2 x 15 x 127 < 2^15), one pairwise add gives each row's int32 sum, and the
//         offset of 8 comes out through the activation block's sum;
//   Q8_0: signed values. maddubs takes |w| and x with w's sign (pairs fit int16), and each
//         step is widened to int32 at once. vpdpbusd takes w + 128 (0..255: the products
//         add up in int32, with no int16 pairs to overflow) and the 128 comes out through
//         the activation block's sum as Q4_0's 8 does, which saves the two sign_epi8 per
//         token and step.
// Either way the integers are the exact block dot products, and the float steps are the
// scalar reference's, per row and block in order, sum + (d_w * d_x) * dot, so both give
// ref::gemv_q4_0 / gemv_q8_0's bits. Uses ops/qgemm_panel-inl.h (included before it). No
// include guard (see simd-inl.h).
#if defined(__AVX2__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "ops/qgemv.h"
#include "runtime/dtype.h"

namespace altup::ops::ALTUP_ISA {

namespace qgemm_q8_detail {

using panel_util::kRows;
using panel_util::kVnni;
using V = panel_util::Vec;

constexpr int64_t kPanelBlockBytes = kRows * 4 + 8 * kRows * 4;  // the float scales, 8 steps

// Rows [0, rows) (rows <= kRows; missing rows: zero) of W -> the panel layout above.
template <bool kQ8>
inline void pack_panel(const uint8_t* w, int64_t row_bytes, int64_t rows, int64_t n_blocks, uint8_t* panel) {
  using Block = std::conditional_t<kQ8, BlockQ8_0, BlockQ4_0>;
  // Q8_0 for vpdpbusd: w + 128 as an unsigned byte is w with its top bit flipped.
  constexpr uint8_t kFlip = kQ8 && kVnni ? 0x80 : 0x00;
  for (int64_t b = 0; b < n_blocks; ++b) {
    uint8_t* out = panel + b * kPanelBlockBytes;
    float d[kRows] = {};
    uint8_t q[kRows][32];             // row r's 32 values, in element order
    std::memset(q, kFlip, sizeof q);  // a missing row: all values 0
    for (int64_t r = 0; r < rows; ++r) {
      Block blk;
      std::memcpy(&blk, w + r * row_bytes + b * static_cast<int64_t>(sizeof blk), sizeof blk);
      d[r] = _cvtsh_ss(blk.d);
      if constexpr (kQ8) {
        for (int j = 0; j < 32; ++j) q[r][j] = static_cast<uint8_t>(blk.qs[j]) ^ kFlip;
      } else {
        for (int j = 0; j < 16; ++j) {  // element j: low nibble of byte j; j + 16: its high nibble
          q[r][j] = blk.qs[j] & 0x0F;
          q[r][j + 16] = blk.qs[j] >> 4;
        }
      }
    }
    std::memcpy(out, d, sizeof d);
    for (int s = 0; s < 8; ++s)
      for (int r = 0; r < kRows; ++r) std::memcpy(out + 4 * kRows * (1 + s) + 4 * r, &q[r][4 * s], 4);
  }
}

// One step's products of 4 values x kRows rows with a token's 4 bytes xv, added to sum.
template <bool kQ8>
inline V::I step(V::I sum, V::I wq, V::I xv) {
#if defined(__AVX512VNNI__)
  return V::dot(sum, wq, xv);  // int32 at once
#else
  if constexpr (kQ8)
    return V::dot(sum, V::sign8(wq, wq), V::sign8(xv, wq));  // |w| and x with w's sign
  else
    return V::add16(sum, V::maddubs(wq, xv));  // int16 pairs
#endif
}

// T tokens against one packed panel: y[t * ldy + r] for r < rows.
template <bool kQ8, int T>
inline void panel_tokens(const uint8_t* panel, const BlockQ8x* x, int64_t n_blocks, float* y, int64_t ldy,
                         int64_t rows) {
  // What the unsigned values stand above the signed ones, taken out through the block sums.
  constexpr int32_t kOffset = kQ8 ? (kVnni ? 128 : 0) : 8;
  V::F acc[T];
  for (int t = 0; t < T; ++t) acc[t] = V::zerof();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* pb = panel + b * kPanelBlockBytes;
    V::I sum[T];  // int32 per row (int16 pairs for Q4_0 on maddubs)
    for (int t = 0; t < T; ++t) sum[t] = V::zero();
#pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) {
      const V::I wq = V::load(pb + 4 * kRows * (1 + s));
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        sum[t] = step<kQ8>(sum[t], wq, panel_util::broadcast4(x[t * n_blocks + b].qs + 4 * s));
      }
    }
    const V::F dw = V::loadf(reinterpret_cast<const float*>(pb));
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const BlockQ8x& xb = x[t * n_blocks + b];
      V::I dot = sum[t];
      if constexpr (!kVnni && !kQ8) dot = V::madd16(dot, V::set1(0x00010001));  // pairs -> int32
      if constexpr (kOffset != 0) dot = V::sub(dot, V::set1(kOffset * xb.sum));
      const V::F scale = V::mulf(dw, V::set1f(xb.d));
      acc[t] = V::addf(acc[t], V::mulf(scale, V::cvt(dot)));
    }
  }
  panel_util::store_rows<T>(acc, y, ldy, rows);
}

template <bool kQ8>
void gemm_panels(const uint8_t* w, int64_t row_bytes, const BlockQ8x* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                 int64_t n_blocks) {
  panel_util::run_panels<uint8_t, BlockQ8x, pack_panel<kQ8>, panel_tokens<kQ8, panel_util::kGroup>,
                         panel_tokens<kQ8, 4>, panel_tokens<kQ8, 1>>(w, row_bytes, x, M, y, ldy, rows, n_blocks,
                                                                     n_blocks * kPanelBlockBytes);
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

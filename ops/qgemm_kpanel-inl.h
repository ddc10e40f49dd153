// K-quant prefill entry points (ops/qgemv.h's gemm_q4_k, gemm_q5_k, gemm_q6_k) per
// instruction set; included after ops/qgemm_k-inl.h, whose row x token tiles serve every
// table. The AVX2 tables (AVX2, AVX-512, avx512_vnni) add panels of kRows weight rows with
// one row per 32-bit lane (ops/qgemm_panel-inl.h: 8 in a ymm, 16 in a zmm on avx512_vnni),
// as ops/qgemm_q8-inl.h does for Q8_0 / Q4_0: the row tiles pay a horizontal sum per row,
// token and super-block, the panels none, as their lanes are the rows.
//
// A panel is repacked once per call, for all M tokens. Per super-block it holds, for its
// rows: the values as unsigned bytes (Q4_K 0..15, Q5_K 0..31, Q6_K's value + 32, 0..63),
// step s (values 4s .. 4s + 3) with row r's in bytes 4r .. 4r + 3; each 16 values' scale as
// an int16 pair per lane; the weights of the token's 16-value sums (Q4_K / Q5_K: the
// sub-block's min, Q6_K: the scale, for its offset of 32); d and dmin as floats. A token's 4
// activation bytes, broadcast, meet all the rows in one maddubs (vpdpbusd on avx512_vnni:
// see runs below). kRun maddubs steps add up exactly in int16 before one madd by the
// scales: pairs are at most 2 x 15 x 127 (Q4_K, 8 steps), 2 x 31 x 127 (Q5_K, 4) and
// 2 x 63 x 127 (Q6_K, 2), so kRun times that stays < 2^15.
// Per (row, token, super-block) the int32 sums are therefore the GEMV's exact integers and
// the float finish is kq_finish's steps, lane for lane: the panels give the GEMV's bits.
// Uses ops/qgemm_panel-inl.h (included before it). No include guard (see simd-inl.h).
#include <algorithm>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "ops/qgemv.h"
#include "runtime/dtype.h"

namespace altup::ops::ALTUP_ISA {

#if defined(__AVX2__)
namespace qgemm_kp_detail {

enum class KType { Q4, Q5, Q6 };

using panel_util::kRows;
using V = panel_util::Vec;

struct PanelBlock {              // one super-block of a panel; row r in lane r
  float d[kRows], dmin[kRows];   // the rows' super-block scales (Q6_K: dmin 0, unused)
  int16_t scale[16][2 * kRows];  // [group j of 16 values]: row r's scale in int16s 2r and 2r + 1
  int16_t per16[8][2 * kRows];   // [p]: row r's weights of the token's bsums[2p], bsums[2p + 1]
  uint8_t q[64][4 * kRows];      // [step s]: row r's values 4s .. 4s + 3 in bytes 4r .. 4r + 3
};

// One row's super-block in the terms above.
struct RowBlock {
  uint8_t q[kQK];
  int16_t scale[16], per16[16];
  float d, dmin;
};

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

template <KType kT>
inline void unpack(const uint8_t* blk, RowBlock& out) {
  if constexpr (kT == KType::Q6) {
    BlockQ6_K b;
    std::memcpy(&b, blk, sizeof b);
    for (int h = 0; h < 2; ++h)  // q6k_value's layout, with l innermost (vectorized)
      for (int g = 0; g < 4; ++g) {
        const uint8_t* ql = b.ql + 64 * h + 32 * (g & 1);
        const uint8_t* qh = b.qh + 32 * h;
        uint8_t* q = out.q + 128 * h + 32 * g;
        for (int l = 0; l < 32; ++l)
          q[l] = static_cast<uint8_t>((g < 2 ? ql[l] & 0x0F : ql[l] >> 4) | ((qh[l] >> (2 * g)) & 3) << 4);
      }
    for (int j = 0; j < 16; ++j) out.scale[j] = out.per16[j] = b.scales[j];
    out.d = half_at(b.d);
    out.dmin = 0.0f;
  } else {
    constexpr bool kFive = kT == KType::Q5;
    const uint8_t* qh = blk + 16;  // Q5_K: bit s of qh[l] is value 32s + l's fifth bit
    const uint8_t* qs = blk + (kFive ? 48 : 16);
    uint8_t sc[8], mn[8];
    kquant_scales_mins(blk + 4, sc, mn);
    for (int s = 0; s < 8; ++s) {  // sub-block s: low (even s) or high nibbles of 32 bytes
      const uint8_t* p = qs + 32 * (s / 2);
      for (int l = 0; l < 32; ++l) {
        int q = s % 2 == 0 ? p[l] & 0x0F : p[l] >> 4;
        if constexpr (kFive) q |= ((qh[l] >> s) & 1) << 4;
        out.q[32 * s + l] = static_cast<uint8_t>(q);
      }
      out.scale[2 * s] = out.scale[2 * s + 1] = sc[s];
      out.per16[2 * s] = out.per16[2 * s + 1] = mn[s];
    }
    out.d = half_at(blk);
    out.dmin = half_at(blk + 2);
  }
}

inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline void store(void* p, __m256i v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }

// out + s * out_ld = (dword s of row 0, ..., dword s of row 7): 8 rows of 8 dwords, ld bytes
// apart, to 8 runs of 32 bytes, out_ld apart.
inline void transpose8x8(const uint8_t* rows, int64_t ld, uint8_t* out, int64_t out_ld) {
  __m256i r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = load(rows + i * ld);
  for (int i = 0; i < 8; i += 2) {  // t[i]: dwords 0, 1 | 4, 5 of rows i, i + 1; t[i + 1]: 2, 3 | 6, 7
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // u[i + k]: dword k | k + 4 of rows i .. i + 3
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    store(out + k * out_ld, _mm256_permute2x128_si256(u[k], u[k + 4], 0x20));
    store(out + (k + 4) * out_ld, _mm256_permute2x128_si256(u[k], u[k + 4], 0x31));
  }
}

// Rows [0, rows) (rows <= kRows; missing rows: zero) of W -> n_blocks panel blocks.
template <KType kT>
void pack_panel(const uint8_t* w, int64_t row_bytes, int64_t rows, int64_t n_blocks, PanelBlock* panel) {
  constexpr int64_t kBytes = kT == KType::Q4   ? sizeof(BlockQ4_K)
                             : kT == KType::Q5 ? sizeof(BlockQ5_K)
                                               : sizeof(BlockQ6_K);
  for (int64_t b = 0; b < n_blocks; ++b) {
    PanelBlock& p = panel[b];
    RowBlock rb[kRows] = {};
    for (int64_t r = 0; r < rows; ++r) unpack<kT>(w + r * row_bytes + b * kBytes, rb[r]);
    for (int r = 0; r < kRows; ++r) {
      p.d[r] = rb[r].d;
      p.dmin[r] = rb[r].dmin;
      for (int j = 0; j < 16; ++j) p.scale[j][2 * r] = p.scale[j][2 * r + 1] = rb[r].scale[j];
      for (int j = 0; j < 16; ++j) p.per16[j / 2][2 * r + j % 2] = rb[r].per16[j];
    }
    for (int s = 0; s < 64; s += 8)  // rows 8h .. 8h + 7 to bytes 32h .. 32h + 31 of each step
      for (int h = 0; h < kRows / 8; ++h)
        transpose8x8(rb[8 * h].q + 4 * s, sizeof(RowBlock), &p.q[s][32 * h], sizeof p.q[0]);
  }
}

#if defined(__AVX512VNNI__)
// The avx512_vnni table's inner loop: vpdpbusd sums each step's 4 products straight into
// int32, so nothing can saturate and a run is a whole scale group (Q4_K / Q5_K: 8 steps, 32
// values; Q6_K: 4 steps, 16 values), then one int32 multiply by the rows' scales. Per run
// and token that is kRun dpbusd + a multiply against kRun maddubs + kRun int16 adds + a madd
// (and Q5_K / Q6_K need two or four int16 runs per group). At least eight accumulators are
// in flight, as dpbusd's latency (5 cycles) at 2 per cycle needs: one per token in groups of
// 8, two (even and odd steps) for fewer tokens. The integers are the same exact sums as the
// maddubs path's, so the bits are too.
template <KType kT, int T>
inline void runs(const PanelBlock& p, const BlockQ8K* xb, int64_t n_blocks, V::I (&sumi)[T]) {
  constexpr int kRun = kT == KType::Q6 ? 4 : 8;
  constexpr int kChains = T >= 8 ? 1 : 2;  // accumulators per token: T x kChains in flight
#pragma GCC unroll 2
  for (int s0 = 0; s0 < 64; s0 += kRun) {
    V::I ch[kChains][T];
    for (int c = 0; c < kChains; ++c)
      for (int t = 0; t < T; ++t) ch[c][t] = V::zero();
#pragma GCC unroll 8
    for (int s = s0; s < s0 + kRun; ++s) {
      const V::I wq = V::load(p.q[s]);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t)
        ch[s % kChains][t] = V::dot(ch[s % kChains][t], wq, panel_util::broadcast4(xb[t * n_blocks].qs + 4 * s));
    }
    // Row r's scale is the int16 pair in lane r: the arithmetic shift gives it as an int32
    // (Q6_K's are signed).
    const V::I sc = V::high16(V::load(p.scale[s0 / 4]));
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      V::I run = ch[0][t];
      for (int c = 1; c < kChains; ++c) run = V::add(run, ch[c][t]);
      sumi[t] = V::add(sumi[t], V::mullo(run, sc));
    }
  }
}
#else
// The AVX2 and AVX-512 tables' inner loop: kRun steps of maddubs add up in int16 pairs (the
// bounds above), then one madd by the scales.
template <KType kT, int T>
inline void runs(const PanelBlock& p, const BlockQ8K* xb, int64_t n_blocks, V::I (&sumi)[T]) {
  constexpr int kRun = kT == KType::Q4 ? 8 : kT == KType::Q5 ? 4 : 2;
#pragma GCC unroll 2
  for (int s0 = 0; s0 < 64; s0 += kRun) {
    V::I part[T];  // int16 pairs: kRun steps of maddubs
    for (int t = 0; t < T; ++t) part[t] = V::zero();
#pragma GCC unroll 8
    for (int s = s0; s < s0 + kRun; ++s) {
      const V::I wq = V::load(p.q[s]);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t)
        part[t] = V::add16(part[t], V::maddubs(wq, panel_util::broadcast4(xb[t * n_blocks].qs + 4 * s)));
    }
    const V::I sc = V::load(p.scale[s0 / 4]);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) sumi[t] = V::add(sumi[t], V::madd16(part[t], sc));
  }
}
#endif

// T tokens (x: token 0's blocks, n_blocks apart) against one packed panel:
// y[t * ldy + r] for r < rows.
template <KType kT, int T>
void panel_tokens(const PanelBlock* panel, const BlockQ8K* x, int64_t n_blocks, float* y, int64_t ldy, int64_t rows) {
  V::F acc[T];
  for (int t = 0; t < T; ++t) acc[t] = V::zerof();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const PanelBlock& p = panel[b];
    const BlockQ8K* xb = x + b;
    V::I sumi[T];
    for (int t = 0; t < T; ++t) sumi[t] = V::zero();
    runs<kT, T>(p, xb, n_blocks, sumi);
    const V::F d = V::loadf(p.d), dmin = V::loadf(p.dmin);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const BlockQ8K& xt = xb[t * n_blocks];
      V::I summ = V::zero();  // Q4_K / Q5_K: the mins' sum; Q6_K: the offset's
#pragma GCC unroll 8
      for (int q = 0; q < 8; ++q)
        summ = V::add(summ, V::madd16(V::load(p.per16[q]), panel_util::broadcast4(xt.bsums + 2 * q)));
      const V::F xd = V::set1f(xt.d);
      if constexpr (kT == KType::Q6) {  // kq_finish(acc, d, 0, xd, sumi - 32 summ, 0)
        const V::I si = V::sub(sumi[t], V::shl5(summ));
        acc[t] = V::addf(acc[t], V::mulf(V::mulf(d, xd), V::cvt(si)));
      } else {  // kq_finish(acc, d, dmin, xd, sumi, summ)
        acc[t] = V::addf(acc[t], V::mulf(V::mulf(d, xd), V::cvt(sumi[t])));
        acc[t] = V::subf(acc[t], V::mulf(V::mulf(dmin, xd), V::cvt(summ)));
      }
    }
  }
  panel_util::store_rows<T>(acc, y, ldy, rows);
}

// Below kquant_panel_min_tokens() tokens (ops/qgemv.h) the repacking costs more than the
// panels save, and the row tiles take the product.
template <KType kT, auto kTiles>
void gemm(const uint8_t* w, int64_t row_bytes, const BlockQ8K* x, int64_t M, float* y, int64_t ldy, int64_t rows,
          int64_t n_blocks) {
  const int64_t setting = kquant_panel_min_tokens();
  if (M < (setting == 0 ? V::kPanelMinTokens : setting)) return kTiles(w, row_bytes, x, M, y, ldy, rows, n_blocks);
  panel_util::run_panels<PanelBlock, BlockQ8K, pack_panel<kT>, panel_tokens<kT, panel_util::kGroup>,
                         panel_tokens<kT, 4>, panel_tokens<kT, 1>>(w, row_bytes, x, M, y, ldy, rows, n_blocks,
                                                                   n_blocks);
}

}  // namespace qgemm_kp_detail

// y[m * ldy + r] for m < M, r < rows: per token, exactly the GEMV's y.
constexpr auto gemm_q4_k = qgemm_kp_detail::gemm<qgemm_kp_detail::KType::Q4, tiles_q4_k>;
constexpr auto gemm_q5_k = qgemm_kp_detail::gemm<qgemm_kp_detail::KType::Q5, tiles_q5_k>;
constexpr auto gemm_q6_k = qgemm_kp_detail::gemm<qgemm_kp_detail::KType::Q6, tiles_q6_k>;
#else
constexpr auto gemm_q4_k = tiles_q4_k;
constexpr auto gemm_q5_k = tiles_q5_k;
constexpr auto gemm_q6_k = tiles_q6_k;
#endif

}  // namespace altup::ops::ALTUP_ISA

// What the int8 panel GEMMs (ops/qgemm_q8-inl.h for Q8_0 / Q4_0, ops/qgemm_kpanel-inl.h for
// the K-quants) share on the AVX2 tables: the vector a panel is built for, the loop over
// panels, and the store of each token's row sums.
//
// A panel holds kRows weight rows with one row per 32-bit lane, so one instruction meets all
// of them at once and the lanes never need a horizontal sum. How many rows is a measured
// choice per table:
//   - AVX2 and AVX-512 (no VNNI): 8 rows in a ymm. Their inner loop is maddubs, whose int16
//     pairs the code adds for several steps before widening; that part stays as it was.
//   - avx512_vnni: 16 rows in a zmm. vpdpbusd sums straight into int32, and on the CPUs that
//     have it a zmm dpbusd issues as often as a ymm one (about 2 per cycle either way on a
//     Sapphire-Rapids-class Xeon), so each instruction does twice the work. On Zen 4, which
//     splits a zmm in two, the rate of products is the same as with ymm.
// Uses ops/qgemv-inl.h's dot_u8s8 (included before it). No include guard (see simd-inl.h).
#if defined(__AVX2__)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace altup::ops::ALTUP_ISA {

namespace panel_util {

#if defined(__AVX512VNNI__)
constexpr bool kVnni = true;  // vpdpbusd: each step's sums go straight to int32

struct Vec {  // 16 rows: one per int32 / float lane of a zmm
  using I = __m512i;
  using F = __m512;
  static constexpr int kRows = 16;
  // Tokens per pass over a panel: 8 (one accumulator chain each) against 4 (two chains
  // each), 512 x 2048 x 2048 on 2 threads: Q8_0 635 -> 701 GFLOP/s, Q4_0 577 -> 628, Q4_K
  // 674 -> 740, Q5_K 680 -> 746, Q6_K 566 -> 672.
  static constexpr int kTokens = 8;
  // From how many tokens the K-quant GEMM takes panels over row tiles (ops/qgemv.h's
  // kquant_panel_min_tokens when left at 0). bench_ops on 2 Xeon cores,
  // gemm_Q4_K / Q6_K_<M>x2048x2048_panels_over_tiles: 1.04 / 0.92 at 8 tokens, 1.72 / 1.47
  // at 16, 2.15 / 1.81 at 24 (bench/results/bench_ops_xeon_zmm_panels.jsonl).
  static constexpr int64_t kPanelMinTokens = 16;
  static I load(const void* p) { return _mm512_loadu_si512(p); }
  static I zero() { return _mm512_setzero_si512(); }
  static I set1(int32_t v) { return _mm512_set1_epi32(v); }
  static I add(I a, I b) { return _mm512_add_epi32(a, b); }
  static I sub(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I mullo(I a, I b) { return _mm512_mullo_epi32(a, b); }
  static I shl5(I a) { return _mm512_slli_epi32(a, 5); }
  static I high16(I a) { return _mm512_srai_epi32(a, 16); }  // each lane's upper int16, signed
  static I madd16(I a, I b) { return _mm512_madd_epi16(a, b); }
  static I dot(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static F loadf(const float* p) { return _mm512_loadu_ps(p); }
  static F zerof() { return _mm512_setzero_ps(); }
  static F set1f(float v) { return _mm512_set1_ps(v); }
  static F cvt(I a) { return _mm512_cvtepi32_ps(a); }
  static F addf(F a, F b) { return _mm512_add_ps(a, b); }
  static F subf(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mulf(F a, F b) { return _mm512_mul_ps(a, b); }
  static void storef(float* p, F v) { _mm512_storeu_ps(p, v); }
};
#else
constexpr bool kVnni = false;

struct Vec {  // 8 rows: one per int32 / float lane of a ymm
  using I = __m256i;
  using F = __m256;
  static constexpr int kRows = 8;
  // Tokens per pass over a panel: 8 would need more than AVX2's 16 registers, and on the
  // AVX-512 table (32) it measured slower than 4 for 4 of the 5 types.
  static constexpr int kTokens = 4;
  // From how many tokens the K-quant GEMM takes panels over row tiles (as above). bench_ops
  // on 2 Zen 3 cores (bench/results/bench_ops_kpanels_sweep.jsonl), Q4_K / Q6_K panels over
  // tiles: 0.77 / 0.84 at 8 tokens, 1.12 / 0.89 at 16, 1.28 / 1.13 at 24, 1.46 / 1.35 at 64.
  static constexpr int64_t kPanelMinTokens = 24;
  static I load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static I zero() { return _mm256_setzero_si256(); }
  static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  static I sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I shl5(I a) { return _mm256_slli_epi32(a, 5); }
  static I madd16(I a, I b) { return _mm256_madd_epi16(a, b); }
  static I add16(I a, I b) { return _mm256_add_epi16(a, b); }
  static I maddubs(I u, I s) { return _mm256_maddubs_epi16(u, s); }  // int16 pairs, saturating
  static I sign8(I a, I b) { return _mm256_sign_epi8(a, b); }
  // u8 x s8, 4 products summed into each int32 lane (ops/qgemv-inl.h; the maddubs pairs
  // cannot saturate where it is used: |w| <= 128 against |x| <= 127).
  static I dot(I acc, I u, I s) { return qgemv_detail::dot_u8s8(acc, u, s); }
  static F loadf(const float* p) { return _mm256_loadu_ps(p); }
  static F zerof() { return _mm256_setzero_ps(); }
  static F set1f(float v) { return _mm256_set1_ps(v); }
  static F cvt(I a) { return _mm256_cvtepi32_ps(a); }
  static F addf(F a, F b) { return _mm256_add_ps(a, b); }
  static F subf(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mulf(F a, F b) { return _mm256_mul_ps(a, b); }
  static void storef(float* p, F v) { _mm256_storeu_ps(p, v); }
};
#endif

constexpr int kRows = Vec::kRows;
constexpr int kGroup = Vec::kTokens;

// 4 bytes at p (a token's activations for one step), in every lane.
inline Vec::I broadcast4(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return Vec::set1(v);
}

// Lanes [0, rows) of token t's accumulator to row t of y.
template <int T>
inline void store_rows(const Vec::F (&acc)[T], float* y, int64_t ldy, int64_t rows) {
  for (int t = 0; t < T; ++t) {
    float out[kRows];
    Vec::storef(out, acc[t]);
    std::copy_n(out, rows, y + t * ldy);
  }
}

// Each kRows weight rows packed once (kPack, into `elems` Panel values kept per thread),
// then every token against them: in groups of kGroup (kTokensGroup), then fours and ones
// (kTokens4, kTokens1).
template <class Panel, class X, auto kPack, auto kTokensGroup, auto kTokens4, auto kTokens1>
void run_panels(const uint8_t* w, int64_t row_bytes, const X* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                int64_t n_blocks, int64_t elems) {
  thread_local std::vector<Panel> store;
  store.resize(static_cast<size_t>(std::max<int64_t>(elems, 1)));
  Panel* panel = store.data();
  for (int64_t r = 0; r < rows; r += kRows) {
    const int64_t pr = std::min<int64_t>(kRows, rows - r);
    kPack(w + r * row_bytes, row_bytes, pr, n_blocks, panel);
    int64_t m = 0;
    if constexpr (kGroup > 4)
      for (; m + kGroup <= M; m += kGroup) kTokensGroup(panel, x + m * n_blocks, n_blocks, y + m * ldy + r, ldy, pr);
    for (; m + 4 <= M; m += 4) kTokens4(panel, x + m * n_blocks, n_blocks, y + m * ldy + r, ldy, pr);
    for (; m < M; ++m) kTokens1(panel, x + m * n_blocks, n_blocks, y + m * ldy + r, ldy, pr);
  }
}

}  // namespace panel_util

}  // namespace altup::ops::ALTUP_ISA
#endif

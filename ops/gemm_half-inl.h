// SIMD prefill product on f16 / bf16 weights without widening whole rows to f32 first
// (ops/gemm_half.h). No include guard (see simd-inl.h).
//
// y[M, rows] = x[M, K] · Wᵀ, W [rows, K] in half precision. Weights go kStrips strips of 2L
// rows at a time, K in chunks of kChunkK: each chunk of a strip is converted to f32 and
// transposed once into a contiguous panel [kChunkK, 2L], which every group of four tokens
// then reads from L1 with gemm_tile_strip's register tile (ops/gemm_tile-inl.h). The
// conversion is paid once per weight and chunk, not once per token. Each y value is one
// chain of FMAs over k in order (chunks continue it through y), so its bits do not depend on
// which rows share its strip or how rows are split between threads.
namespace altup::ops::ALTUP_ISA {

constexpr int64_t kHalfChunkK = 128, kHalfStrips = 4;

#if defined(__F16C__) || defined(__aarch64__)
constexpr bool kHalfDot = true;  // f16 widened by an instruction (Kernels::half_dot)
#else
constexpr bool kHalfDot = false;
#endif

template <bool BF16>
inline void gemm_half(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                      int64_t K) {
  constexpr int64_t NR = 2 * L;
  alignas(64) float panel[kHalfStrips][kHalfChunkK * NR];  // [strip][p][2L]
  alignas(64) float tail[4 * NR];                          // a partial strip's outputs for 4 tokens
  if (K <= 0) {                                            // an empty sum
    for (int64_t m = 0; m < M; ++m) std::fill(y + m * ldy, y + m * ldy + rows, 0.0f);
    return;
  }
  for (int64_t n0 = 0; n0 < rows; n0 += kHalfStrips * NR) {
    const int64_t strips = std::min(kHalfStrips, (rows - n0 + NR - 1) / NR);
    for (int64_t p0 = 0; p0 < K; p0 += kHalfChunkK) {
      const int64_t kp = std::min(kHalfChunkK, K - p0);
      for (int64_t s = 0; s < strips; ++s)
        for (int64_t c = 0; c < NR; ++c) {  // column c of the panel: weight row n0 + s·NR + c
          const int64_t r = n0 + s * NR + c;
          float* dst = panel[s] + c;
          if (r >= rows) {
            for (int64_t p = 0; p < kp; ++p) dst[p * NR] = 0.0f;
            continue;
          }
          const uint16_t* src = w + r * ldw + p0;
          int64_t p = 0;
          alignas(64) float v[L];
          for (; p + L <= kp; p += L) {
            load_w(src + p, BF16).store_aligned(v);  // gemv-inl.h
            for (int64_t i = 0; i < L; ++i) dst[(p + i) * NR] = v[i];
          }
          for (; p < kp; ++p) dst[p * NR] = scalar_w(src[p], BF16);
        }
      const bool acc = p0 > 0;
      gemm_tile_row_groups(M, [&](auto group, int64_t m) {
        constexpr int R = decltype(group)::value;
        for (int64_t s = 0; s < strips; ++s) {
          const int64_t j = n0 + s * NR, width = std::min(NR, rows - j);
          float* c = y + m * ldy + j;
          if (width == NR) {
            gemm_tile_strip<R>(x + m * K + p0, K, panel[s], c, ldy, kp, acc);
            continue;
          }
          for (int r = 0; r < R; ++r)  // a partial strip: through a full-width copy
            for (int64_t i = 0; i < NR; ++i) tail[r * NR + i] = acc && i < width ? c[r * ldy + i] : 0.0f;
          gemm_tile_strip<R>(x + m * K + p0, K, panel[s], tail, NR, kp, true);
          for (int r = 0; r < R; ++r) std::copy_n(tail + r * NR, width, c + r * ldy);
        }
      });
    }
  }
}

// Dot-product tiles, the other way to multiply half-precision rows: RM rows x RN tokens of
// accumulators, each the FMA chain of one (row, token) pair along k. A weight vector is
// widened in registers (F16C, NEON, or a shift for bf16) and used by RN tokens, an x vector by
// RM rows; no conversion pass, no panel. With 3 x 4 (12 accumulators, 7 loads per 12 FMAs) and
// tokens in blocks of 24 (their x rows stay in L2 while the weight rows pass), on 2 Zen 3
// cores through E2B's shapes (a throwaway A/B, 2026-11-24): 147-179 GFLOP/s at 64-128 tokens
// against oneDNN's 128-154 on widened rows, on par at 512 (153-178 against 158-173). Each y
// value is one chain over k, reduced the same way whatever tile it was in.
template <bool BF16, int RM, int RN>
inline void half_dot_tile(const uint16_t* w, int64_t ldw, const float* x, int64_t K, float* y, int64_t ldy) {
  V acc[RM][RN];
#pragma GCC unroll 4
  for (int i = 0; i < RM; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) acc[i][j] = V(0.0f);
  int64_t k = 0;
  for (; k + L <= K; k += L) {
    V a[RM];
#pragma GCC unroll 4
    for (int i = 0; i < RM; ++i) a[i] = load_w(w + i * ldw + k, BF16);
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) {
      const V b = loadu(x + j * K + k);
#pragma GCC unroll 4
      for (int i = 0; i < RM; ++i) acc[i][j] = xsimd::fma(a[i], b, acc[i][j]);
    }
  }
  for (int i = 0; i < RM; ++i)
    for (int j = 0; j < RN; ++j) {
      float s = reduce_sum(acc[i][j]);
      for (int64_t t = k; t < K; ++t) s += scalar_w(w[i * ldw + t], BF16) * x[j * K + t];
      y[j * ldy + i] = s;
    }
}

template <bool BF16, int RM>
inline void half_dot_tile_rows(int rn, const uint16_t* w, int64_t ldw, const float* x, int64_t K, float* y,
                               int64_t ldy) {
  switch (rn) {
    case 4: half_dot_tile<BF16, RM, 4>(w, ldw, x, K, y, ldy); break;
    case 3: half_dot_tile<BF16, RM, 3>(w, ldw, x, K, y, ldy); break;
    case 2: half_dot_tile<BF16, RM, 2>(w, ldw, x, K, y, ldy); break;
    default: half_dot_tile<BF16, RM, 1>(w, ldw, x, K, y, ldy); break;
  }
}

template <bool BF16>
inline void gemm_half_dot(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy,
                          int64_t rows, int64_t K) {
  constexpr int64_t RM = 3, RN = 4, kTokenBlock = 24;
  for (int64_t m0 = 0; m0 < M; m0 += kTokenBlock) {
    const int64_t m1 = std::min(M, m0 + kTokenBlock);
    for (int64_t r = 0; r < rows; r += RM)
      for (int64_t m = m0; m < m1; m += RN) {
        const int rn = static_cast<int>(std::min(RN, m1 - m));
        const uint16_t* wr = w + r * ldw;
        const float* xm = x + m * K;
        float* yc = y + m * ldy + r;
        switch (std::min(RM, rows - r)) {
          case 3: half_dot_tile_rows<BF16, 3>(rn, wr, ldw, xm, K, yc, ldy); break;
          case 2: half_dot_tile_rows<BF16, 2>(rn, wr, ldw, xm, K, yc, ldy); break;
          default: half_dot_tile_rows<BF16, 1>(rn, wr, ldw, xm, K, yc, ldy); break;
        }
      }
  }
}

inline void gemm_f16_dot(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                         int64_t K) {
  gemm_half_dot<false>(w, ldw, x, M, y, ldy, rows, K);
}
inline void gemm_bf16_dot(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy,
                          int64_t rows, int64_t K) {
  gemm_half_dot<true>(w, ldw, x, M, y, ldy, rows, K);
}

inline void gemm_f16(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                     int64_t K) {
  gemm_half<false>(w, ldw, x, M, y, ldy, rows, K);
}
inline void gemm_bf16(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
                      int64_t K) {
  gemm_half<true>(w, ldw, x, M, y, ldy, rows, K);
}

}  // namespace altup::ops::ALTUP_ISA

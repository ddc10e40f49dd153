// AltUp mixing over the widened state: K blocks per token, kept as a ring of K separate
// [T, d] buffers (one [K, T, d] tensor whose slot k is rows k*T .. (k+1)*T-1).
//   predict:  xhat_i = sum_k P[i][k] * x_k                (P: [K, K] per layer, or [T, K, K])
//   correct:  x'_i   = xhat_i + g[i] * (y - xhat_j)       (g: [K] per layer, or [T, K])
//   magnitude matching: y *= sqrt(mean(x^2)) / sqrt(max(mean(y^2), eps))   (per token)
// Predict costs O(K^2 d) and correct O(K d) per token, against O(d^2) for a layer.
#pragma once

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

constexpr int kMaxAltupBlocks = 8;

namespace ref {
void altup_predict(const float* const* x, float* const* out, const float* p, int K, int64_t n);
void altup_correct(float* const* xhat, const float* y, const float* g, int K, int j, int64_t n);
void magnitude_match(const float* x, float* y, int64_t n, float eps);
}  // namespace ref

// Whole-ring versions over T tokens, threaded over tokens. ring/out: [K, T, d] (out may be
// ring); p: [K*K] or [T*K*K]; g: [K] or [T*K].
// `table` picks a kernel table (tests run every one); null means the one in use.
Status altup_predict(const float* ring, float* out, const float* p, bool p_per_token, int K, int64_t T, int64_t d,
                     int threads, const Kernels* table = nullptr);
Status altup_correct(float* ring, const float* y, const float* g, bool g_per_token, int K, int j, int64_t T, int64_t d,
                     int threads, const Kernels* table = nullptr);
// y [T, d] rescaled in place to the per-token RMS of x [T, d].
void magnitude_match(const float* x, float* y, int64_t T, int64_t d, float eps, int threads,
                     const Kernels* table = nullptr);

// Graph ops.
// kAltupPredict: inputs {ring [K, T, d], P [K, K] or [T, K, K]}, output [K, T, d] (may be a
//   view of the ring itself); optional AltupPredictParams.
// kAltupCorrect: inputs {ring [K, T, d], y [T, d], g [K] or [T, K]}, output [K, T, d]
//   (a view of the ring: corrected in place); AltupCorrectParams: the active block j and a
//   constant added to every g_i.
// kMagnitudeMatch: inputs {y [T, d], x [T, d]}, output [T, d]; MagnitudeMatchParams.
struct AltupPredictParams {
  // Gemma 3n predicts a residual on top of the ring: xhat_i = x_i + sum_k P[i][k] x_k, i.e.
  // P + I. Its P comes from the router per token, so the identity is added here, not stored.
  bool identity_residual = false;
};
struct AltupCorrectParams {
  int active = 0;      // the block the layer ran on
  float g_offset = 0;  // Gemma 3n's router coefficients are corrections to 1: g_i + 1
};
struct MagnitudeMatchParams {
  float eps = 1e-6f;
};
extern const OpDef kAltupPredict;
extern const OpDef kAltupCorrect;
extern const OpDef kMagnitudeMatch;

// Prologue and epilogue, the only places the K blocks meet a K*d-wide row.
// kAltupSpread: inputs {e [T, K*d] (widened) or [T, d] (recycled: every block a copy)},
//   output the ring [K, T, d].
// kAltupCollapse: inputs {ring [K, T, d]}, output [T, d] = sum_k x_k, or [T, K*d] = the
//   blocks side by side.
extern const OpDef kAltupSpread;
extern const OpDef kAltupCollapse;

}  // namespace altup::ops

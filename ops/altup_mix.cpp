#include "ops/altup_mix.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "ops/isa.h"
#include "ops/op_util.h"

namespace altup::ops {

void ref::altup_predict(const float* const* x, float* const* out, const float* p, int K, int64_t n) {
  float col[kMaxAltupBlocks];
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < K; ++k) col[k] = x[k][i];
    for (int r = 0; r < K; ++r) {
      double acc = 0;
      for (int k = 0; k < K; ++k) acc += static_cast<double>(p[r * K + k]) * col[k];
      out[r][i] = static_cast<float>(acc);
    }
  }
}

void ref::altup_correct(float* const* xhat, const float* y, const float* g, int K, int j, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float delta = y[i] - xhat[j][i];
    for (int k = 0; k < K; ++k) xhat[k][i] += g[k] * delta;
  }
}

void ref::magnitude_match(const float* x, float* y, int64_t n, float eps) {
  double sx = 0, sy = 0;
  for (int64_t i = 0; i < n; ++i) {
    sx += static_cast<double>(x[i]) * x[i];
    sy += static_cast<double>(y[i]) * y[i];
  }
  const double my = std::max(sy / static_cast<double>(n), static_cast<double>(eps));
  const float r = static_cast<float>(std::sqrt(sx / static_cast<double>(n)) / std::sqrt(my));
  for (int64_t i = 0; i < n; ++i) y[i] *= r;
}

namespace {
Status check_k(int K) {
  if (K < 1 || K > kMaxAltupBlocks)
    return make_error("AltUp block count " + std::to_string(K) + " is outside 1.." + std::to_string(kMaxAltupBlocks));
  return {};
}
// Predict and correct do O(K^2 d) work per token.
int threads_for(int64_t T, int64_t d, int K, int threads) { return altup::threads_for(T * d * K * K, threads); }
}  // namespace

Status altup_predict(const float* ring, float* out, const float* p, bool p_per_token, int K, int64_t T, int64_t d,
                     int threads, const Kernels* table) {
  ALTUP_TRY(check_k(K));
  const Kernels& k = table ? *table : kernels();
  parallel_for(T, threads_for(T, d, K, threads), [&](int64_t t0, int64_t t1) {
    const float* x[kMaxAltupBlocks];
    float* o[kMaxAltupBlocks];
    for (int64_t t = t0; t < t1; ++t) {
      for (int b = 0; b < K; ++b) {
        x[b] = ring + (b * T + t) * d;
        o[b] = out + (b * T + t) * d;
      }
      k.altup_predict(x, o, p_per_token ? p + t * K * K : p, K, d);
    }
  });
  return {};
}

Status altup_correct(float* ring, const float* y, const float* g, bool g_per_token, int K, int j, int64_t T, int64_t d,
                     int threads, const Kernels* table) {
  ALTUP_TRY(check_k(K));
  if (j < 0 || j >= K)
    return make_error("active block " + std::to_string(j) + " is outside 0.." + std::to_string(K - 1));
  const Kernels& k = table ? *table : kernels();
  parallel_for(T, threads_for(T, d, K, threads), [&](int64_t t0, int64_t t1) {
    float* x[kMaxAltupBlocks];
    for (int64_t t = t0; t < t1; ++t) {
      for (int b = 0; b < K; ++b) x[b] = ring + (b * T + t) * d;
      k.altup_correct(x, y + t * d, g_per_token ? g + t * K : g, K, j, d);
    }
  });
  return {};
}

void magnitude_match(const float* x, float* y, int64_t T, int64_t d, float eps, int threads, const Kernels* table) {
  const Kernels& k = table ? *table : kernels();
  for_rows(T, d, threads, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float mx = k.sum_squares(x + t * d, d) / static_cast<float>(d);
      const float my = std::max(k.sum_squares(y + t * d, d) / static_cast<float>(d), eps);
      k.scale(y + t * d, std::sqrt(mx) / std::sqrt(my), y + t * d, d);
    }
  });
}

namespace {

Result<int> ring_k(const TensorView& ring, int64_t* T, int64_t* d) {
  if (ring.shape.ndim != 3) return make_error("the AltUp ring must be [K, T, d], got " + ring.shape.str());
  *T = ring.shape[1];
  *d = ring.shape[2];
  return static_cast<int>(ring.shape[0]);
}

Status run_predict(const Node& node, ExecContext& ctx) {
  const TensorView &ring = ctx.input(node, 0), &p = ctx.input(node, 1), &out = ctx.output(node);
  ALTUP_TRY(expect_f32({&ring, &p, &out}));
  int64_t T, d;
  auto K = ring_k(ring, &T, &d);
  if (!K) return K.error();
  if (out.shape != ring.shape) return make_error("predict output " + out.shape.str() + " differs from the ring");
  const bool per_token = p.numel() == T * *K * *K && T > 1;
  if (!per_token && p.numel() != *K * *K)
    return make_error("predict coefficients " + p.shape.str() + " are neither [K, K] nor [T, K, K]");
  AltupPredictParams params;
  if (!node.params.empty()) ALTUP_TRY(params_of(node, &params));
  if (!params.identity_residual)
    return altup_predict(ring.as<float>(), out.as<float>(), p.as<float>(), per_token, *K, T, d, ctx.threads());
  // P + I, per coefficient matrix ([T, K, K] floats at most: small next to the ring). The
  // buffer is kept per thread: this runs every layer of every decode step.
  thread_local std::vector<float> pi;
  pi.assign(p.as<float>(), p.as<float>() + p.numel());
  for (size_t m = 0; m < pi.size(); m += static_cast<size_t>(*K * *K))
    for (int i = 0; i < *K; ++i) pi[m + static_cast<size_t>(i * *K + i)] += 1.0f;
  return altup_predict(ring.as<float>(), out.as<float>(), pi.data(), per_token, *K, T, d, ctx.threads());
}

Status run_correct(const Node& node, ExecContext& ctx) {
  const TensorView &ring = ctx.input(node, 0), &y = ctx.input(node, 1), &g = ctx.input(node, 2),
                   &out = ctx.output(node);
  ALTUP_TRY(expect_f32({&ring, &y, &g, &out}));
  int64_t T, d;
  auto K = ring_k(ring, &T, &d);
  if (!K) return K.error();
  if (out.shape != ring.shape || y.numel() != T * d) return make_error("correct: ring / y shapes do not agree");
  const bool per_token = g.numel() == T * *K && T > 1;
  if (!per_token && g.numel() != *K)
    return make_error("correct coefficients " + g.shape.str() + " are neither [K] nor [T, K]");
  if (out.data != ring.data)  // out of place: start from a copy of the ring
    std::memcpy(out.data, ring.data, static_cast<size_t>(*K * T * d) * sizeof(float));
  AltupCorrectParams p;
  ALTUP_TRY(params_of(node, &p));
  if (p.g_offset == 0.0f)
    return altup_correct(out.as<float>(), y.as<float>(), g.as<float>(), per_token, *K, p.active, T, d, ctx.threads());
  thread_local std::vector<float> g1;  // [K] or [T, K]; kept per thread, as above
  g1.assign(g.as<float>(), g.as<float>() + g.numel());
  for (float& v : g1) v += p.g_offset;
  return altup_correct(out.as<float>(), y.as<float>(), g1.data(), per_token, *K, p.active, T, d, ctx.threads());
}

Status run_magnitude(const Node& node, ExecContext& ctx) {
  const TensorView &y = ctx.input(node, 0), &x = ctx.input(node, 1), &out = ctx.output(node);
  ALTUP_TRY(expect_f32({&y, &x, &out}));
  if (y.shape != x.shape || out.shape != y.shape) return make_error("magnitude match: shapes differ");
  if (out.data != y.data) std::memcpy(out.data, y.data, static_cast<size_t>(y.numel()) * sizeof(float));
  MagnitudeMatchParams p;
  ALTUP_TRY(params_of(node, &p));
  magnitude_match(x.as<float>(), out.as<float>(), y.rows(), y.cols(), p.eps, ctx.threads());
  return {};
}

double predict_flops(const Node& n, const Graph& g) {
  const Shape& s = g.tensor(n.inputs[0]).shape;
  return 2.0 * static_cast<double>(s[0]) * static_cast<double>(s.numel());
}
double correct_flops(const Node& n, const Graph& g) {
  return 2.0 * static_cast<double>(g.tensor(n.inputs[0]).shape.numel());
}
double ring_bytes(const Node& n, const Graph& g) {
  return 8.0 * static_cast<double>(g.tensor(n.inputs[0]).shape.numel());
}
double ring_bytes_out(const Node& n, const Graph& g) {
  return 8.0 * static_cast<double>(g.tensor(n.output).shape.numel());
}

Status run_spread(const Node& node, ExecContext& ctx) {
  const TensorView &e = ctx.input(node, 0), &ring = ctx.output(node);
  ALTUP_TRY(expect_f32({&e, &ring}));
  int64_t T, d;
  auto K = ring_k(ring, &T, &d);
  if (!K) return K.error();
  const bool widened = e.cols() == *K * d;
  if (e.rows() != T || (!widened && e.cols() != d))
    return make_error("cannot spread " + e.shape.str() + " over a ring " + ring.shape.str());
  for (int64_t k = 0; k < *K; ++k)
    for (int64_t t = 0; t < T; ++t)
      std::memcpy(ring.as<float>() + (k * T + t) * d, e.row<float>(t) + (widened ? k * d : 0),
                  static_cast<size_t>(d) * sizeof(float));
  return {};
}

Status run_collapse(const Node& node, ExecContext& ctx) {
  const TensorView &ring = ctx.input(node, 0), &h = ctx.output(node);
  ALTUP_TRY(expect_f32({&ring, &h}));
  int64_t T, d;
  auto K = ring_k(ring, &T, &d);
  if (!K) return K.error();
  const float* x = ring.as<float>();
  if (h.rows() == T && h.cols() == *K * d) {  // blocks side by side
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < *K; ++k)
        std::memcpy(h.row<float>(t) + k * d, x + (k * T + t) * d, static_cast<size_t>(d) * sizeof(float));
    return {};
  }
  if (h.rows() != T || h.cols() != d)
    return make_error("cannot collapse a ring " + ring.shape.str() + " into " + h.shape.str());
  const Kernels& k = kernels();
  for (int64_t t = 0; t < T; ++t) {
    float* out = h.row<float>(t);
    std::memcpy(out, x + t * d, static_cast<size_t>(d) * sizeof(float));
    for (int64_t b = 1; b < *K; ++b) k.add(out, x + (b * T + t) * d, out, d);
  }
  return {};
}

}  // namespace

const OpDef kAltupSpread = {"altup_spread", run_spread, nullptr, ring_bytes_out};
const OpDef kAltupCollapse = {"altup_collapse", run_collapse, nullptr, ring_bytes};
const OpDef kAltupPredict = {"altup_predict", run_predict, predict_flops, ring_bytes};
const OpDef kAltupCorrect = {"altup_correct", run_correct, correct_flops, ring_bytes};
const OpDef kMagnitudeMatch = {"magnitude_match", run_magnitude, nullptr, nullptr};

}  // namespace altup::ops

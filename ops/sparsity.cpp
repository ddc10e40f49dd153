#include "ops/sparsity.h"

#include <cmath>

#include "ops/isa.h"
#include "ops/op_util.h"

namespace altup::ops {

double icdf_normal(double p) {
  if (!(p > 0.0 && p < 1.0)) return p == 0.0 ? -INFINITY : p == 1.0 ? INFINITY : NAN;
  // Acklam's rational approximation (relative error < 1.2e-9) ...
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double lo = 0.02425;
  double x;
  if (p < lo) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - lo) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // ... then one Halley step on the exact CDF brings it to full double precision.
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

void ref::gaussian_topk(const float* x, float* y, int64_t n, float z) {
  if (n == 0) return;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  const double mean = s / static_cast<double>(n);
  double v = 0;
  for (int64_t i = 0; i < n; ++i) v += (x[i] - mean) * (x[i] - mean);
  const float t = static_cast<float>(mean + std::sqrt(v / static_cast<double>(n)) * z);
  for (int64_t i = 0; i < n; ++i) y[i] = std::max(x[i] - t, 0.0f);
}

void gaussian_topk(const float* x, float* y, int64_t rows, int64_t n, float z, int threads, const Kernels* table) {
  if (n == 0) return;
  const Kernels& k = table ? *table : kernels();
  for_rows(rows, n, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * n;
      float* yr = y + r * n;
      const float mean = k.sum(xr, n) / static_cast<float>(n);
      // Two passes (mean, then squared deviations) as torch.std does; E[x^2] - mean^2
      // cancels badly when the mean is large.
      float var = 0;
      for (int64_t i = 0; i < n; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      const float t = mean + std::sqrt(var / static_cast<float>(n)) * z;
      for (int64_t i = 0; i < n; ++i) yr[i] = std::max(xr[i] - t, 0.0f);
    }
  });
}

namespace {
Status run(const Node& node, ExecContext& ctx) {
  const TensorView &x = ctx.input(node, 0), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&x, &y}));
  if (x.shape != y.shape) return make_error("shapes " + x.shape.str() + " -> " + y.shape.str() + " differ");
  GaussianTopKParams params;
  ALTUP_TRY(params_of(node, &params));
  const float p = params.sparsity;
  if (!(p > 0.0f && p < 1.0f)) return make_error("sparsity target " + std::to_string(p) + " is outside (0, 1)");
  gaussian_topk(x.as<float>(), y.as<float>(), x.rows(), x.cols(), static_cast<float>(icdf_normal(p)), ctx.threads());
  return {};
}
}  // namespace

const OpDef kGaussianTopK = {"gaussian_topk", run, nullptr, nullptr};

}  // namespace altup::ops

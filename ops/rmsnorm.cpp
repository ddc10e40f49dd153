#include "ops/rmsnorm.h"

#include <cmath>

#include "ops/isa.h"
#include "ops/op_util.h"

namespace altup::ops {

void ref::rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  if (n == 0) return;
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * r * (w ? w[i] : 1.0f);
}

namespace {
Status run(const Node& node, ExecContext& ctx) {
  const TensorView &x = ctx.input(node, 0), &y = ctx.output(node);
  const TensorView* w = node.inputs.size() > 1 ? &ctx.input(node, 1) : nullptr;
  ALTUP_TRY(expect_f32({&x, &y}));
  if (w) ALTUP_TRY(expect_f32({w}));
  if (x.shape != y.shape) return make_error("shapes " + x.shape.str() + " -> " + y.shape.str() + " differ");
  if (w && w->numel() != x.cols())
    return make_error("weight " + w->shape.str() + " does not match rows of " + std::to_string(x.cols()));
  const Kernels& k = kernels();
  RmsNormParams p;
  ALTUP_TRY(params_of(node, &p));
  const float eps = p.eps;
  const float* wd = w ? w->as<float>() : nullptr;
  for_rows(x.rows(), x.cols(), ctx.threads(), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) k.rmsnorm(x.row<float>(r), wd, y.row<float>(r), x.cols(), eps);
  });
  return {};
}
double flops(const Node& n, const Graph& g) { return 4.0 * static_cast<double>(g.tensor(n.output).shape.numel()); }
double bytes(const Node& n, const Graph& g) { return 8.0 * static_cast<double>(g.tensor(n.output).shape.numel()); }
}  // namespace

const OpDef kRmsNorm = {"rmsnorm", run, flops, bytes};

}  // namespace altup::ops

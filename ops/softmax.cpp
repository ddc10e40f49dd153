#include "ops/softmax.h"

#include <cmath>

#include "ops/isa.h"
#include "ops/op_util.h"

namespace altup::ops {

void ref::softmax(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - m);
    s += y[i];
  }
  const float inv = static_cast<float>(1.0 / s);
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

namespace {
Status run(const Node& node, ExecContext& ctx) {
  const TensorView &x = ctx.input(node, 0), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&x, &y}));
  if (x.shape != y.shape) return make_error("shapes " + x.shape.str() + " -> " + y.shape.str() + " differ");
  const Kernels& k = kernels();
  for_rows(x.rows(), x.cols(), ctx.threads(), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) k.softmax(x.row<float>(r), y.row<float>(r), x.cols());
  });
  return {};
}
double flops(const Node& n, const Graph& g) { return 12.0 * static_cast<double>(g.tensor(n.output).shape.numel()); }
}  // namespace

const OpDef kSoftmax = {"softmax", run, flops, nullptr};

}  // namespace altup::ops

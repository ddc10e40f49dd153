#include "ops/layout.h"

#include <cstring>

#include "ops/op_util.h"

namespace altup::ops {

void ref::swap_axes01(const float* x, float* y, int64_t A, int64_t B, int64_t C) {
  for (int64_t a = 0; a < A; ++a)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c) y[(b * A + a) * C + c] = x[(a * B + b) * C + c];
}

void swap_axes01(const float* x, float* y, int64_t A, int64_t B, int64_t C, int threads) {
  // Rows of C floats are copied whole; each output block [A, C] is one thread's.
  for_rows(B, A * C, threads, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t a = 0; a < A; ++a)
        std::memcpy(y + (b * A + a) * C, x + (a * B + b) * C, static_cast<size_t>(C) * sizeof(float));
  });
}

namespace {
Status run(const Node& node, ExecContext& ctx) {
  const TensorView &x = ctx.input(node, 0), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&x, &y}));
  if (x.shape.ndim != 3 || y.shape.ndim != 3 || y.shape[0] != x.shape[1] || y.shape[1] != x.shape[0] ||
      y.shape[2] != x.shape[2])
    return make_error("swap_axes01: " + x.shape.str() + " -> " + y.shape.str() + " is not [A, B, C] -> [B, A, C]");
  if (x.data == y.data) return make_error("swap_axes01 cannot work in place");
  swap_axes01(x.as<float>(), y.as<float>(), x.shape[0], x.shape[1], x.shape[2], ctx.threads());
  return {};
}
double bytes(const Node& n, const Graph& g) { return 8.0 * static_cast<double>(g.tensor(n.output).shape.numel()); }
}  // namespace

const OpDef kSwapAxes01 = {"swap_axes01", run, nullptr, bytes};

}  // namespace altup::ops

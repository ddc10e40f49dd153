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

void ref::slice_axis1(const float* x, float* y, int64_t A, int64_t B, int64_t C, int64_t start, int64_t n) {
  for (int64_t a = 0; a < A; ++a)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < C; ++c) y[(a * n + j) * C + c] = x[(a * B + start + j) * C + c];
}

void slice_axis1(const float* x, float* y, int64_t A, int64_t B, int64_t C, int64_t start, int64_t n, int threads) {
  // Each outer index's n rows are one contiguous run in x and in y.
  for_rows(A, n * C, threads, [&](int64_t a0, int64_t a1) {
    for (int64_t a = a0; a < a1; ++a)
      std::memcpy(y + a * n * C, x + (a * B + start) * C, static_cast<size_t>(n * C) * sizeof(float));
  });
}

namespace {
Status run_slice(const Node& node, ExecContext& ctx) {
  const TensorView &x = ctx.input(node, 0), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&x, &y}));
  SliceParams p;
  ALTUP_TRY(params_of(node, &p));
  if (x.shape.ndim != 3 || y.shape.ndim != 3 || y.shape[0] != x.shape[0] || y.shape[2] != x.shape[2] || p.start < 0 ||
      p.start + y.shape[1] > x.shape[1])
    return make_error("slice_axis1: rows [" + std::to_string(p.start) + ", " + std::to_string(p.start + y.shape[1]) +
                      ") of " + x.shape.str() + " -> " + y.shape.str() + " is not a slice of the middle axis");
  if (x.data == y.data) return make_error("slice_axis1 cannot work in place");
  slice_axis1(x.as<float>(), y.as<float>(), x.shape[0], x.shape[1], x.shape[2], p.start, y.shape[1], ctx.threads());
  return {};
}
}  // namespace

const OpDef kSliceAxis1 = {"slice_axis1", run_slice, nullptr, bytes};

}  // namespace altup::ops

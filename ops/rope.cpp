#include "ops/rope.h"

#include <cmath>
#include <vector>

#include "ops/isa.h"
#include "ops/op_util.h"

namespace altup::ops {

void ref::rope_neox(float* x, const float* cos, const float* sin, int64_t hd) {
  const int64_t h = hd / 2;
  for (int64_t i = 0; i < h; ++i) {
    const float a = x[i], b = x[i + h];
    x[i] = a * cos[i] - b * sin[i];
    x[i + h] = b * cos[i] + a * sin[i];
  }
}

void ref::rope_normal(float* x, const float* cos, const float* sin, int64_t hd) {
  for (int64_t i = 0; i < hd / 2; ++i) {
    const float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * cos[i] - b * sin[i];
    x[2 * i + 1] = b * cos[i] + a * sin[i];
  }
}

void rope_angles(int64_t pos, float theta, int64_t hd, float* cos, float* sin) {
  for (int64_t i = 0; i < hd / 2; ++i) {
    const float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(hd));
    const float angle = static_cast<float>(pos) * inv_freq;
    cos[i] = std::cos(angle);
    sin[i] = std::sin(angle);
  }
}

namespace {
Status run(const Node& node, ExecContext& ctx) {
  const TensorView &x = ctx.input(node, 0), &pos = ctx.input(node, 1), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&x, &y}));
  if (x.shape.ndim != 3 || x.shape != y.shape) return make_error("rope wants x [T, H, hd], got " + x.shape.str());
  if (pos.dtype != DType::I32 || pos.numel() != x.shape[0])
    return make_error("rope positions must be I32 [" + std::to_string(x.shape[0]) + "]");
  const int64_t T = x.shape[0], H = x.shape[1], hd = x.shape[2];
  if (hd % 2) return make_error("rope head size " + std::to_string(hd) + " is odd");
  const Kernels& k = kernels();
  RopeParams p;
  ALTUP_TRY(params_of(node, &p));
  const float theta = p.theta;
  const bool normal = p.adjacent_pairs;
  for_rows(T, H * hd, ctx.threads(), [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> cs;
    cs.resize(static_cast<size_t>(hd));
    for (int64_t t = t0; t < t1; ++t) {
      rope_angles(pos.as<int32_t>()[t], theta, hd, cs.data(), cs.data() + hd / 2);
      const float* src = x.row<float>(t * H);
      float* dst = y.row<float>(t * H);
      if (dst != src)
        for (int64_t i = 0; i < H * hd; ++i) dst[i] = src[i];
      for (int64_t h = 0; h < H; ++h) {
        if (normal)
          ref::rope_normal(dst + h * hd, cs.data(), cs.data() + hd / 2, hd);
        else
          k.rope_neox(dst + h * hd, cs.data(), cs.data() + hd / 2, hd);
      }
    }
  });
  return {};
}
double flops(const Node& n, const Graph& g) { return 3.0 * static_cast<double>(g.tensor(n.output).shape.numel()); }
}  // namespace

const OpDef kRope = {"rope", run, flops, nullptr};

}  // namespace altup::ops

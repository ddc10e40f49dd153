// RMSNorm: y = x / sqrt(mean(x^2) + eps) * w, per row of the innermost dimension. Without a
// weight (w = 1) for Gemma 3n's v-norm; per head when the row is one head ([.., heads, hd]).
#pragma once

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

namespace ref {
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);
}

// Graph op: inputs {x} or {x, w}; w has the length of x's innermost dimension, so a [T, H, hd]
// x with a [hd] weight is the per-head norm. RmsNormParams.
struct RmsNormParams {
  float eps = 1e-6f;
};
extern const OpDef kRmsNorm;

}  // namespace altup::ops

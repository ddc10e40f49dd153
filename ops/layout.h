// Moving data without arithmetic: swapping the two outer axes of a [A, B, C] tensor,
//   y[b][a][:] = x[a][b][:]                                      [A, B, C] -> [B, A, C]
// Gemma 3n computes its per-layer inputs for all layers at once as [T, L, P]; swapped to
// [L, T, P], each layer's slice is one contiguous [T, P] view.
#pragma once

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

namespace ref {
void swap_axes01(const float* x, float* y, int64_t A, int64_t B, int64_t C);
}

// Threaded over the output's outer axis.
void swap_axes01(const float* x, float* y, int64_t A, int64_t B, int64_t C, int threads);

// Graph op: inputs {x [A, B, C]}, output [B, A, C].
extern const OpDef kSwapAxes01;

}  // namespace altup::ops

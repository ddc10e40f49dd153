// Moving data without arithmetic.
// swap_axes01 swaps the two outer axes of a [A, B, C] tensor,
//   y[b][a][:] = x[a][b][:]                                      [A, B, C] -> [B, A, C]
// Gemma 3n computes its per-layer inputs for all layers at once as [T, L, P]; swapped to
// [L, T, P], each layer's slice is one contiguous [T, P] view.
// slice_axis1 keeps n consecutive rows of the middle axis,
//   y[a][j][:] = x[a][start + j][:]                   [A, B, C] -> [A, n, C], 0 <= j < n
// An AltUp ring [K, T, d] holds each stream's rows apart, so the last token's K rows are not
// one view; when a prefill only needs the last token's logits, the layers past the last
// cache write run on this [K, 1, d] slice (models/altup.cpp, models/gemma3n.cpp).
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

namespace ref {
void slice_axis1(const float* x, float* y, int64_t A, int64_t B, int64_t C, int64_t start, int64_t n);
}

// Threaded over the outer axis. Requires 0 <= start, start + n <= B.
void slice_axis1(const float* x, float* y, int64_t A, int64_t B, int64_t C, int64_t start, int64_t n, int threads);

struct SliceParams {
  int64_t start = 0;
};

// Graph op: inputs {x [A, B, C]}, params SliceParams, output [A, n, C].
extern const OpDef kSliceAxis1;

}  // namespace altup::ops

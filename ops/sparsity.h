// Gaussian top-k activation sparsity (Gemma 3n's first layers): per row, keep what lies above
// a threshold placed as if the row were normal,
//   t = mean(x) + std(x) * icdf_normal(p)      (population std, as transformers computes it)
//   y = max(x - t, 0)
// so about a fraction p of the entries become zero.
#pragma once

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

// The standard normal's inverse CDF, to double precision, for p in (0, 1).
double icdf_normal(double p);

namespace ref {
void gaussian_topk(const float* x, float* y, int64_t n, float z);  // z = icdf_normal(p)
}

// `table` picks a kernel table (tests run every one); null means the one in use.
void gaussian_topk(const float* x, float* y, int64_t rows, int64_t n, float z, int threads,
                   const Kernels* table = nullptr);

// Graph op: inputs {x [.., n]}, output same shape; GaussianTopKParams.
struct GaussianTopKParams {
  float sparsity = 0.95f;  // the fraction of activations set to zero, in (0, 1)
};
extern const OpDef kGaussianTopK;

}  // namespace altup::ops

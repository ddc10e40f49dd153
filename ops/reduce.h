// Reductions: dot product, sum of squares, sum. Building blocks of norms, attention and the
// AltUp magnitude matching; not graph ops themselves.
#pragma once

#include <cstdint>

namespace altup::ops::ref {
float dot(const float* a, const float* b, int64_t n);
float sum_squares(const float* x, int64_t n);
float sum(const float* x, int64_t n);
}  // namespace altup::ops::ref

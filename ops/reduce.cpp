#include "ops/reduce.h"

namespace altup::ops::ref {

// Accumulate in double: the reference should be the most accurate version, not the fastest.
float dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(s);
}
float sum_squares(const float* x, int64_t n) { return dot(x, x, n); }
float sum(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return static_cast<float>(s);
}

}  // namespace altup::ops::ref

// Numerically stable softmax over the innermost dimension: y = exp(x - max x) / sum.
#pragma once

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

namespace ref {
void softmax(const float* x, float* y, int64_t n);
}

extern const OpDef kSoftmax;  // {x}

}  // namespace altup::ops

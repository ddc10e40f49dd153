// Instruction-set selection. Every table compiled into this binary is listed, with whether
// this CPU can run it; the best runnable one is used unless ALTUP_ISA names another (for
// tests and benchmarks: ALTUP_ISA=scalar|sse4.2|avx2|avx512|neon).
#pragma once

#include <vector>

#include "ops/kernels.h"

namespace altup::ops {

struct IsaEntry {
  const Kernels* kernels;
  bool runnable;  // this CPU supports it
};

const Kernels& scalar_kernels();               // the references
const std::vector<IsaEntry>& compiled_isas();  // scalar first, then ascending by width
const Kernels& kernels();                      // the one in use (chosen once)

}  // namespace altup::ops

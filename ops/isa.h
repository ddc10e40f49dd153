// Instruction-set selection. Every table compiled into this binary is listed, with whether
// this CPU can run it; the best runnable one is used. ALTUP_ISA=scalar|sse4.2|avx2|avx512|
// avx512_vnni|neon|neon_dotprod caps the choice: tables above the one it names count as not
// runnable, everywhere (kernels() and the tests' list of tables alike), so a machine can
// behave like an older CPU. Used by
// scripts/test.sh together with oneDNN's ONEDNN_MAX_CPU_ISA.
#pragma once

#include <string>
#include <vector>

#include "ops/kernels.h"

namespace altup::ops {

struct IsaEntry {
  const Kernels* kernels;
  bool runnable;  // this CPU supports it, and ALTUP_ISA does not cap it away
};

const Kernels& scalar_kernels();               // the references
const std::vector<IsaEntry>& compiled_isas();  // scalar first, then ascending by width
const Kernels& kernels();                      // the one in use (chosen once)

// Empty, or why ALTUP_ISA was not applied (an unknown name, or a table this CPU cannot run);
// the library never prints, so the program says it.
const std::string& isa_cap_problem();

}  // namespace altup::ops

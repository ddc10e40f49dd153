// What this build and this machine offer: the kernel table in use and the others compiled
// in, the CPU features seen, oneDNN's version and instruction set, threads. Shown by
// `altup info --system` and altup_system_info().
#pragma once

#include <string>

namespace altup {

std::string system_info();

}  // namespace altup

// A cheap monotonic clock for timing every node: the CPU's time-stamp counter (x86-64 rdtsc,
// ARM64 cntvct_el0) read in a few nanoseconds, converted to nanoseconds with a rate measured
// once against std::chrono::steady_clock. Elsewhere it falls back to steady_clock. (Constant-
// rate counters are standard on the CPUs we target: x86-64 "constant_tsc", ARMv8 generic timer.)
#pragma once

#include <chrono>
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace altup {

inline uint64_t cycle_ticks() {
#if defined(__x86_64__)
  return __rdtsc();
#elif defined(__aarch64__)
  uint64_t v;
  asm volatile("mrs %0, cntvct_el0" : "=r"(v));
  return v;
#else
  return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

// Nanoseconds per tick, measured over ~20 ms the first time it is asked for.
double ns_per_tick();

}  // namespace altup

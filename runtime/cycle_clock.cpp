#include "runtime/cycle_clock.h"

#include <thread>

namespace altup {

double ns_per_tick() {
  static const double rate = [] {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const uint64_t c0 = cycle_ticks();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const uint64_t c1 = cycle_ticks();
    const double ns = std::chrono::duration<double, std::nano>(clock::now() - t0).count();
    return c1 > c0 ? ns / static_cast<double>(c1 - c0) : 1.0;
  }();
  return rate;
}

}  // namespace altup

// Threads. Kernels work on row ranges and never start threads; parallel_for splits a range
// over an explicit number of OpenMP threads. oneDNN (built with the OpenMP runtime in Debian)
// takes its thread count from omp_get_max_threads() of the calling thread, so ops that call it
// run outside any parallel region after set_compute_threads(); tests/test_threading.cpp
// checks that every thread really works during such a call.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace altup {

// Cores available to this process.
int available_threads();

// Make later oneDNN calls from this thread use n threads.
inline void set_compute_threads(int n) { omp_set_num_threads(std::max(1, n)); }

// The least work worth a thread of its own, in multiply-adds or elements touched: 128 Ki of
// them (512 KiB of f32 weights, some 40-100 µs on one core), well above what waking and
// joining a thread costs (~1 µs spinning, tens of µs from sleep). Below it the work runs on
// fewer threads, down to the calling one alone: at decode a [64 -> 2048] product gets 1
// thread, [2048 -> 256] 4, [2048 -> 2048] 32 (all there are), an add over 2048 floats 1. So
// small ops never fork and join for nothing, and on a busy machine, where each fork waits
// for the slowest thread's time slice, there are fewer forks to wait for.
constexpr int64_t kWorkPerThread = int64_t{1} << 17;

// How many of `threads` `work` deserves: one per kWorkPerThread, at least 1.
inline int threads_for(int64_t work, int threads) {
  return static_cast<int>(std::clamp<int64_t>(work / kWorkPerThread, 1, std::max(threads, 1)));
}

// fn(begin, end) on disjoint contiguous chunks covering [0, n); the chunk a thread gets
// depends only on (n, n_threads), so results never depend on scheduling.
template <class F>
void parallel_for(int64_t n, int n_threads, F&& fn) {
  if (n <= 0) return;
  const int nt = static_cast<int>(std::clamp<int64_t>(n_threads, 1, n));
  if (nt == 1) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t k = omp_get_thread_num();
    const int64_t team = omp_get_num_threads();  // may be fewer than asked for
    const int64_t begin = n * k / team, end = n * (k + 1) / team;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace altup

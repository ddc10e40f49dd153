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

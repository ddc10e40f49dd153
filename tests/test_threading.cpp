// Threads: parallel_for covers a range exactly once; oneDNN, called from an executor node,
// really runs on every requested thread (measured per thread, not assumed).
#include <doctest/doctest.h>

#include <omp.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#if defined(ALTUP_HAVE_ONEDNN)
#include "ops/gemm_dnnl.h"
#endif
#include "ops/op_util.h"
#include "runtime/executor.h"
#include "runtime/threading.h"

using namespace altup;

namespace {
[[maybe_unused]] double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// CPU time used so far by each thread of an OpenMP team of n. libgomp keeps its pool: the
// team that runs here is the one oneDNN's own parallel regions get for the same size.
[[maybe_unused]] std::vector<double> team_cpu_seconds(int n) {
  std::vector<double> t(static_cast<size_t>(n), -1.0);
#pragma omp parallel num_threads(n)
  t[static_cast<size_t>(omp_get_thread_num())] = thread_cpu_seconds();
  return t;
}
}  // namespace

TEST_CASE("parallel_for covers [0, n) exactly once for any n and thread count") {
  for (int threads : {1, 2, 3, 8})
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_for(n, threads, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (int64_t i = 0; i < n; ++i) REQUIRE(hits[static_cast<size_t>(i)] == 1);
    }
}

#if defined(ALTUP_HAVE_ONEDNN)
TEST_CASE("oneDNN called from the executor uses every thread it is given") {
  // With spinning idle threads every thread accrues CPU time whether it works or not.
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  REQUIRE_MESSAGE((policy && std::string(policy) == "PASSIVE"),
                  "run with OMP_WAIT_POLICY=PASSIVE (meson test sets it)");
  const int threads = 2;
  const int64_t m = 256, n = 1024, k = 1024;  // ~0.5 GFLOP per call
  std::vector<float> x(static_cast<size_t>(m * k), 0.5f), w(static_cast<size_t>(n * k), 0.25f);
  Graph g;
  TensorId xi = g.add_input("x", DType::F32, {m, k});
  TensorId wi = g.add_weight("w", TensorView::contiguous(DType::F32, {n, k}, w.data()));
  TensorId y = g.add_node(&ops::kMatMulDnnl, {xi, wi}, "matmul", 0, DType::F32, {m, n});
  g.mark_output(y);
  auto ex = Executor::create(g);
  REQUIRE(ex.ok());
  (*ex)->bind_input(xi, x.data());
  REQUIRE((*ex)->run(threads).ok());  // warm-up: creates oneDNN's kernels and the team
  CHECK((*ex)->tensor(y).as<float>()[0] == doctest::Approx(0.5 * 0.25 * k));

  const auto before = team_cpu_seconds(threads);
  for (int rep = 0; rep < 5; ++rep) REQUIRE((*ex)->run(threads).ok());
  const auto after = team_cpu_seconds(threads);
  double total = 0;
  for (int t = 0; t < threads; ++t) total += after[t] - before[t];
  for (int t = 0; t < threads; ++t) {
    const double share = (after[t] - before[t]) / total;
    CAPTURE(t);
    CAPTURE(share);
    // Each thread did a real part of the work (an even split is 0.5; a team that ran on one
    // thread would give the other ~0).
    CHECK(share > 0.25);
  }
}
#endif  // ALTUP_HAVE_ONEDNN

TEST_CASE("each op's work decides its threads: small products stay on one, large ones get them all") {
  CHECK(threads_for(0, 16) == 1);
  CHECK(threads_for(64 * 2048, 16) == 1);     // Gemma 3n's laurel_r at decode
  CHECK(threads_for(2048 * 256, 16) == 4);    // ple_gate
  CHECK(threads_for(2048 * 2048, 16) == 16);  // attention and FFN projections
  CHECK(threads_for(2048 * 2048, 2) == 2);
  CHECK(threads_for(int64_t{1} << 40, 0) == 1);
  // for_rows runs on exactly that many threads, each on a contiguous share.
  for (const int64_t cols : {int64_t{64}, int64_t{2048}}) {
    const int64_t rows = 2048;
    std::vector<int> who(static_cast<size_t>(rows), -1);
    ops::for_rows(rows, cols, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) who[static_cast<size_t>(r)] = omp_get_thread_num();
    });
    int distinct = 0;
    for (int t = 0; t < 8; ++t) distinct += std::count(who.begin(), who.end(), t) > 0;
    CAPTURE(cols);
    CHECK(distinct == std::min(8, threads_for(rows * cols, 8)));
    CHECK(std::count(who.begin(), who.end(), -1) == 0);
  }
}

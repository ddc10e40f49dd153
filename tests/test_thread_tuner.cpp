// engine/thread_tuner.h: decode steps settle on the thread count that measures fastest,
// keep probing its neighbours rarely, and follow a change of load. Driven by synthetic step
// times, so nothing here depends on this machine's speed.
#include <doctest/doctest.h>

#include <functional>
#include <map>

#include "engine/thread_tuner.h"

using namespace altup;

namespace {
// Runs `steps` steps whose time on t threads is cost(t); returns how often each count ran.
std::map<int, int> drive(ThreadTuner& tuner, int steps, const std::function<double(int)>& cost) {
  std::map<int, int> runs;
  for (int s = 0; s < steps; ++s) {
    const int t = tuner.next();
    ++runs[t];
    tuner.record(t, cost(t));
  }
  return runs;
}
}  // namespace

TEST_CASE("the fastest count wins, and probes stay rare") {
  // An idle machine, a model that scales: more threads, faster steps.
  ThreadTuner scaling(16);
  auto runs = drive(scaling, 1000, [](int t) { return 1.0 / t; });
  CHECK(scaling.best() == 16);
  CHECK(runs[16] >= 1000 - 1000 / ThreadTuner::kProbeEvery - 5 * ThreadTuner::kWarmup);
  // Decode that stops scaling past 8 and gets slower at 16 (sync costs more than it saves).
  ThreadTuner peaked(16);
  drive(peaked, 400, [](int t) { return t == 16 ? 0.30 : t == 8 ? 0.20 : 1.6 / t; });
  CHECK(peaked.best() == 8);
  // A busy machine: every fork waits for a time slice, one thread is best.
  ThreadTuner busy(2);
  runs = drive(busy, 640, [](int t) { return t == 1 ? 1e-3 : 20e-3; });
  CHECK(busy.best() == 1);
  CHECK(runs[2] <= ThreadTuner::kWarmup + 640 / ThreadTuner::kProbeEvery);
  // ... and a probe that keeps losing by far is tried less and less often.
  ThreadTuner busier(2);
  runs = drive(busier, 5000, [](int t) { return t == 1 ? 1e-3 : 20e-3; });
  CHECK(runs[2] <= ThreadTuner::kWarmup + 10);  // 32, 64, ..., 1024, then every 1024 steps
  // One thread allowed: nothing to choose.
  ThreadTuner one(1);
  runs = drive(one, 10, [](int) { return 1.0; });
  CHECK(runs[1] == 10);
}

TEST_CASE("a change of load is followed") {
  ThreadTuner tuner(4);
  drive(tuner, 200, [](int t) { return 1.0 / t; });
  CHECK(tuner.best() == 4);
  // Other processes take the cores: 4 threads now lose to 2, and 2 to 1.
  drive(tuner, 2000, [](int t) { return t == 4 ? 8.0 : t == 2 ? 2.0 : 1.0; });
  CHECK(tuner.best() == 1);
  // They leave again.
  drive(tuner, 2000, [](int t) { return 1.0 / t; });
  CHECK(tuner.best() == 4);
}

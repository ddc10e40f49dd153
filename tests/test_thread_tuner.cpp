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
    const StepPlan p = tuner.next();
    ++runs[p.threads];
    tuner.record(p, cost(p.threads));
  }
  return runs;
}
// The same over plans: how often each (threads, branches) ran.
std::map<std::pair<int, bool>, int> drive_plans(ThreadTuner& tuner, int steps,
                                                const std::function<double(StepPlan)>& cost) {
  std::map<std::pair<int, bool>, int> runs;
  for (int s = 0; s < steps; ++s) {
    const StepPlan p = tuner.next();
    ++runs[{p.threads, p.branches}];
    tuner.record(p, cost(p));
  }
  return runs;
}
}  // namespace

TEST_CASE("the fastest count wins, and probes stay rare") {
  // An idle machine, a model that scales: more threads, faster steps.
  ThreadTuner scaling(16);
  auto runs = drive(scaling, 1000, [](int t) { return 1.0 / t; });
  CHECK(scaling.best().threads == 16);
  CHECK(runs[16] >= 1000 - 1000 / ThreadTuner::kProbeEvery - 5 * ThreadTuner::kWarmup);
  // Decode that stops scaling past 8 and gets slower at 16 (sync costs more than it saves).
  ThreadTuner peaked(16);
  drive(peaked, 400, [](int t) { return t == 16 ? 0.30 : t == 8 ? 0.20 : 1.6 / t; });
  CHECK(peaked.best().threads == 8);
  // A busy machine: every fork waits for a time slice, one thread is best.
  ThreadTuner busy(2);
  runs = drive(busy, 640, [](int t) { return t == 1 ? 1e-3 : 20e-3; });
  CHECK(busy.best().threads == 1);
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
  CHECK(tuner.best().threads == 4);
  // Other processes take the cores: 4 threads now lose to 2, and 2 to 1.
  drive(tuner, 2000, [](int t) { return t == 4 ? 8.0 : t == 2 ? 2.0 : 1.0; });
  CHECK(tuner.best().threads == 1);
  // They leave again.
  drive(tuner, 2000, [](int t) { return 1.0 / t; });
  CHECK(tuner.best().threads == 4);
}

TEST_CASE("with branches to run, each count above 1 is tried both ways and the faster way wins") {
  // Branches at once pay on 8 and 4 threads, not on 2.
  auto cost = [](StepPlan p) {
    const double base = 1.0 / p.threads;
    return p.threads == 1 ? base : p.branches ? (p.threads >= 4 ? 0.7 * base : 1.1 * base) : base;
  };
  ThreadTuner eight(8, true);
  auto runs = drive_plans(eight, 600, cost);
  CHECK(eight.tries_branches());
  CHECK(eight.best() == StepPlan{8, true});
  for (int t : {8, 4, 2}) {
    CAPTURE(t);
    CHECK(runs[{t, true}] >= ThreadTuner::kWarmup);  // every plan was timed
    CHECK(runs[{t, false}] >= ThreadTuner::kWarmup);
  }
  CHECK(runs[{1, true}] == 0);  // one thread: nothing runs at once
  CHECK(runs[{8, true}] >= 600 - 600 / ThreadTuner::kProbeEvery - 7 * ThreadTuner::kWarmup);
  ThreadTuner two(2, true);
  drive_plans(two, 200, cost);
  CHECK(two.best() == StepPlan{2, false});
  // Without branches to run, only the counts are candidates.
  ThreadTuner plain(8);
  runs = drive_plans(plain, 100, cost);
  CHECK_FALSE(plain.tries_branches());
  for (const auto& [plan, n] : runs) CHECK(plan.second);  // the executor's default
  CHECK(runs.size() == 4);
}

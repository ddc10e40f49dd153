// How many threads a decode step gets. A one-token step's output does not depend on the
// thread count (every kernel it runs is bit-identical across splits: docs/guarantees.md), so
// the session may run each step on whichever share of its threads measures fastest: all of
// them on an idle machine with a model large enough, fewer where forking and joining costs
// more than it saves (a small model, many cores, or a machine busy with other work, where a
// fork waits for the time slice of its slowest thread).
//
// The candidates are max, max/2, ..., 1. Each is timed twice to start; after that the
// fastest (by a moving average of its step times) runs, and one step now and then tries a
// neighbour of it (half or double), so a change in the machine's load is noticed: every
// kProbeEvery steps, or half as often each time the neighbour lost by far (down to every
// kMaxProbeEvery steps), since a probe on an oversubscribed machine can cost as much as
// dozens of ordinary steps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace altup {

// How a decode step runs: on how many threads, and whether the graph's sections run their
// branches at once (Executor::run).
struct StepPlan {
  int threads = 1;
  bool branches = true;
  bool operator==(const StepPlan&) const = default;
};

class ThreadTuner {
 public:
  static constexpr int kProbeEvery = 32;       // steps between two probes of a neighbour
  static constexpr int kMaxProbeEvery = 1024;  // ... when it keeps losing by far
  static constexpr int kWarmup = 2;            // timed steps of each candidate before choosing

  // branches: whether to choose between running sections' branches at once or not.
  explicit ThreadTuner(int max_threads, bool branches = false);
  StepPlan next();                             // how to run the next decode step
  void record(StepPlan plan, double seconds);  // how long a step run so took
  StepPlan best() const { return candidates_[static_cast<size_t>(best_)]; }
  bool tries_branches() const { return branches_; }

 private:
  std::vector<StepPlan> candidates_;  // max, max/2, ..., 1 threads (each but 1 with and without branches)
  std::vector<double> average_;       // moving average of step seconds, per candidate
  std::vector<int> samples_;
  std::vector<int64_t> interval_;  // steps between probes, per candidate
  std::vector<int64_t> since_;     // steps since its last probe
  int best_ = 0;
  bool probe_up_ = false;  // the next probe doubles (else halves)
  bool branches_ = false;
};

}  // namespace altup

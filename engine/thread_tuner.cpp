#include "engine/thread_tuner.h"

#include <algorithm>

namespace altup {

ThreadTuner::ThreadTuner(int max_threads, bool branches) : branches_(branches) {
  for (int t = std::max(max_threads, 1);; t /= 2) {
    if (branches && t > 1) candidates_.push_back({t, true});
    candidates_.push_back({t, !branches});  // nothing to choose: the executor's default (at once)
    if (t == 1) break;
  }
  average_.assign(candidates_.size(), 0.0);
  samples_.assign(candidates_.size(), 0);
  interval_.assign(candidates_.size(), kProbeEvery);
  since_.assign(candidates_.size(), 0);
}

StepPlan ThreadTuner::next() {
  const int n = static_cast<int>(candidates_.size());
  // Warm-up: every candidate kWarmup times, round robin.
  for (int round = 0; round < kWarmup; ++round)
    for (int i = 0; i < n; ++i)
      if (samples_[static_cast<size_t>(i)] <= round) return candidates_[static_cast<size_t>(i)];
  for (int64_t& s : since_) ++s;
  // A neighbour of the best whose turn has come, more threads and fewer alternately.
  for (int k = 0; k < 2; ++k) {
    const bool up = probe_up_ != (k == 1);
    const int i = up ? best_ - 1 : best_ + 1;
    if (i < 0 || i >= n || since_[static_cast<size_t>(i)] < interval_[static_cast<size_t>(i)]) continue;
    probe_up_ = !up;
    since_[static_cast<size_t>(i)] = 0;
    return candidates_[static_cast<size_t>(i)];
  }
  return best();
}

void ThreadTuner::record(StepPlan plan, double seconds) {
  const auto it = std::find(candidates_.begin(), candidates_.end(), plan);
  if (it == candidates_.end() || !(seconds >= 0)) return;
  const auto i = static_cast<size_t>(it - candidates_.begin());
  const auto b = static_cast<size_t>(best_);
  // A probe that lost by far is tried half as often next time (up to every kMaxProbeEvery
  // steps): on a busy machine one slow step can cost as much as dozens of fast ones.
  if (samples_[i] >= kWarmup && i != b)
    interval_[i] = seconds > 1.5 * average_[b] ? std::min<int64_t>(2 * interval_[i], kMaxProbeEvery) : kProbeEvery;
  // The first sample sets the average; later ones move it a quarter of the way.
  average_[i] = samples_[i] == 0 ? seconds : 0.75 * average_[i] + 0.25 * seconds;
  ++samples_[i];
  best_ = 0;
  for (size_t k = 1; k < candidates_.size(); ++k)
    if (samples_[k] > 0 &&
        (samples_[static_cast<size_t>(best_)] == 0 || average_[k] < average_[static_cast<size_t>(best_)]))
      best_ = static_cast<int>(k);
}

}  // namespace altup

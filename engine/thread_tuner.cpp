#include "engine/thread_tuner.h"

#include <algorithm>

namespace altup {

ThreadTuner::ThreadTuner(int max_threads) {
  for (int t = std::max(max_threads, 1);; t /= 2) {
    candidates_.push_back(t);
    if (t == 1) break;
  }
  average_.assign(candidates_.size(), 0.0);
  samples_.assign(candidates_.size(), 0);
}

int ThreadTuner::next() {
  const int n = static_cast<int>(candidates_.size());
  // Warm-up: every candidate kWarmup times, round robin.
  for (int round = 0; round < kWarmup; ++round)
    for (int i = 0; i < n; ++i)
      if (samples_[static_cast<size_t>(i)] <= round) return candidates_[static_cast<size_t>(i)];
  ++steps_;
  if (n > 1 && steps_ % kProbeEvery == 0) {
    // A neighbour of the best, alternately more and fewer threads where both exist.
    const bool up = (probe_up_ && best_ > 0) || best_ == n - 1;
    probe_up_ = !probe_up_;
    return candidates_[static_cast<size_t>(up ? best_ - 1 : best_ + 1)];
  }
  return best();
}

void ThreadTuner::record(int threads, double seconds) {
  const auto it = std::find(candidates_.begin(), candidates_.end(), threads);
  if (it == candidates_.end() || !(seconds >= 0)) return;
  const auto i = static_cast<size_t>(it - candidates_.begin());
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

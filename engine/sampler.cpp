#include "engine/sampler.h"

#include <cstdio>

#include <algorithm>
#include <cmath>

namespace altup {

Status check(const SamplerParams& p) {
  namespace r = sampling_range;
  const std::pair<const SamplingRange*, double> fields[] = {
      {&r::temperature, p.temperature},
      {&r::top_k, p.top_k},
      {&r::top_p, p.top_p},
      {&r::min_p, p.min_p},
      {&r::repeat_penalty, p.repeat_penalty},
      {&r::repeat_last_n, p.repeat_last_n},
  };
  for (const auto& [range, v] : fields)
    if (!range->admits(v)) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s must be in %c%g, %g]", range->name, range->open_lo ? '(' : '[', range->lo,
                    range->hi);
      return make_error(buf);
    }
  return {};
}

Sampler::Sampler(const SamplerParams& p, int32_t vocab_size) : p_(p), vocab_(vocab_size), rng_(p.seed) {
  work_.resize(static_cast<size_t>(vocab_size));
  cand_.reserve(static_cast<size_t>(vocab_size));
}

int32_t Sampler::sample(const float* logits, const std::vector<int32_t>& history) {
  std::copy(logits, logits + vocab_, work_.begin());
  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n > 0) {
    penalized_.clear();
    const size_t from = history.size() > static_cast<size_t>(p_.repeat_last_n) ? history.size() - p_.repeat_last_n : 0;
    for (size_t i = from; i < history.size(); ++i) {
      const int32_t t = history[i];
      // Each token is penalized once however often it recurs (a short linear scan: the
      // window is repeat_last_n tokens).
      if (t < 0 || t >= vocab_ || std::find(penalized_.begin(), penalized_.end(), t) != penalized_.end()) continue;
      penalized_.push_back(t);
      float& l = work_[static_cast<size_t>(t)];
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  cand_.clear();
  if (p_.temperature <= 0.0f) {  // greedy: the first of the largest logits
    const auto it = std::max_element(work_.begin(), work_.end());
    const auto tok = static_cast<int32_t>(it - work_.begin());
    cand_.emplace_back(1.0f, tok);
    return tok;
  }
  for (int32_t t = 0; t < vocab_; ++t) cand_.emplace_back(work_[static_cast<size_t>(t)], t);
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  if (p_.top_k > 0 && p_.top_k < vocab_) {
    std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
    cand_.resize(static_cast<size_t>(p_.top_k));
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Probabilities of what is left (softmax at temperature 1 for the filters).
  auto to_probs = [this](float temperature) -> const std::vector<float>& {
    const float m = cand_.front().first;
    double z = 0;
    for (auto& c : cand_) z += std::exp((c.first - m) / temperature);
    probs_.resize(cand_.size());
    for (size_t i = 0; i < cand_.size(); ++i)
      probs_[i] = static_cast<float>(std::exp((cand_[i].first - m) / temperature) / z);
    return probs_;
  };
  if (p_.top_p < 1.0f) {
    const auto& probs = to_probs(1.0f);
    double cum = 0;
    size_t keep = cand_.size();
    for (size_t i = 0; i < probs.size(); ++i) {
      cum += probs[i];
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    cand_.resize(keep);
  }
  if (p_.min_p > 0.0f) {
    const auto& probs = to_probs(1.0f);
    size_t keep = 1;
    while (keep < probs.size() && probs[keep] >= p_.min_p * probs[0]) ++keep;
    cand_.resize(keep);
  }
  const auto& probs = to_probs(p_.temperature);
  for (size_t i = 0; i < cand_.size(); ++i) cand_[i].first = probs[i];
  // Draw: u uniform in [0, 1) from the top 24 bits, so the result does not depend on the
  // standard library's distribution code.
  const float u = static_cast<float>(rng_() >> 40) * (1.0f / 16777216.0f);
  float cum = 0;
  for (const auto& c : cand_) {
    cum += c.first;
    if (u < cum) return c.second;
  }
  return cand_.back().second;
}

}  // namespace altup

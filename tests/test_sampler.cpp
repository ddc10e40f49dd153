// The sampler: greedy is argmax, each filter keeps what it promises, draws follow the
// softmax at the chosen temperature, a seed repeats a sequence, and the repetition penalty
// lowers the tokens it saw.
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "engine/sampler.h"

using namespace altup;

namespace {
SamplerParams plain(float temperature) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  return p;
}
}  // namespace

TEST_CASE("greedy picks the largest logit (the first one on ties)") {
  const std::vector<float> logits = {0.1f, 2.5f, -1.0f, 2.5f, 0.0f};
  Sampler s(plain(0.0f), 5);
  CHECK(s.sample(logits.data(), {}) == 1);
}

TEST_CASE("draws follow softmax(logits / T)") {
  const std::vector<float> logits = {1.0f, 2.0f, 0.0f, -1.0f};
  for (float T : {1.0f, 0.5f}) {
    SamplerParams p = plain(T);
    p.seed = 42;
    Sampler s(p, 4);
    std::map<int, int> counts;
    const int n = 40000;
    for (int i = 0; i < n; ++i) counts[s.sample(logits.data(), {})]++;
    double z = 0;
    for (float l : logits) z += std::exp(l / T);
    for (int t = 0; t < 4; ++t) {
      const double want = std::exp(logits[t] / T) / z;
      CAPTURE(T);
      CAPTURE(t);
      // Four standard deviations of a binomial proportion.
      CHECK(std::fabs(counts[t] / double(n) - want) <= 4 * std::sqrt(want * (1 - want) / n) + 1e-4);
    }
  }
}

TEST_CASE("top-k, top-p and min-p keep exactly the tokens they should") {
  const std::vector<float> logits = {3.0f, 2.0f, 1.0f, 0.0f, -1.0f, -2.0f};
  SamplerParams p = plain(1.0f);
  p.top_k = 3;
  Sampler k3(p, 6);
  k3.sample(logits.data(), {});
  CHECK(k3.candidates().size() == 3);

  // Softmax of the logits: 0.6364, 0.2341, 0.0861, 0.0317, 0.0117, 0.0043.
  p = plain(1.0f);
  p.top_p = 0.85f;  // 0.6364 + 0.2341 = 0.8705 >= 0.85: two tokens
  Sampler tp(p, 6);
  tp.sample(logits.data(), {});
  CHECK(tp.candidates().size() == 2);

  p = plain(1.0f);
  p.min_p = 0.1f;  // keep p >= 0.0636: three tokens
  Sampler mp(p, 6);
  mp.sample(logits.data(), {});
  CHECK(mp.candidates().size() == 3);
  double total = 0;
  for (const auto& c : mp.candidates()) total += c.first;
  CHECK(total == doctest::Approx(1.0));
}

TEST_CASE("the same seed gives the same tokens; another seed differs") {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = std::sin(i * 0.37f) * 2.0f;
  auto run = [&](uint64_t seed) {
    SamplerParams p;
    p.seed = seed;
    p.temperature = 1.0f;
    Sampler s(p, 100);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(logits.data(), out));
    return out;
  };
  CHECK(run(7) == run(7));
  CHECK(run(7) != run(8));
}

TEST_CASE("the repetition penalty lowers recent tokens only") {
  const std::vector<float> logits = {2.0f, 1.9f, -1.0f};
  SamplerParams p = plain(0.0f);
  p.repeat_penalty = 1.5f;
  p.repeat_last_n = 2;
  Sampler s(p, 3);
  CHECK(s.sample(logits.data(), {}) == 0);
  CHECK(s.sample(logits.data(), {0}) == 1);        // 2.0 / 1.5 < 1.9
  CHECK(s.sample(logits.data(), {0, 2, 2}) == 0);  // token 0 is older than the last 2
}

// Picks the next token from logits. The chain, in llama.cpp's default order:
//   repetition penalty (last N tokens: positive logits / penalty, negative * penalty)
//   -> top-k -> top-p (smallest set whose probability reaches p) -> min-p (drop tokens
//   below min_p x the most likely one's probability) -> temperature -> draw.
// temperature <= 0 is greedy (argmax after the penalty). A seed makes draws repeatable.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "runtime/error.h"

namespace altup {

struct SamplerParams {
  float temperature = 0.8f;
  int top_k = 40;               // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.1f;  // 1: off
  int repeat_last_n = 64;
  uint64_t seed = 0;
};

// The values each parameter accepts, one table for every front end: the command line's
// options (their ranges and help) and the C API's checks both read it.
struct SamplingRange {
  const char* name;  // as the C API names the field
  double lo, hi;
  bool open_lo = false;  // the value must be > lo
  bool admits(double v) const { return (open_lo ? v > lo : v >= lo) && v <= hi; }
};
namespace sampling_range {
inline constexpr SamplingRange temperature{"temperature", 0, 100};
inline constexpr SamplingRange top_k{"top_k", 0, 1 << 30};
inline constexpr SamplingRange top_p{"top_p", 0, 1, true};
inline constexpr SamplingRange min_p{"min_p", 0, 1};
inline constexpr SamplingRange repeat_penalty{"repeat_penalty", 0.01, 100};
inline constexpr SamplingRange repeat_last_n{"repeat_last_n", 0, 1 << 30};
}  // namespace sampling_range

// Every field in its range, or one message naming the first that is not ("top_p must be in
// (0, 1]").
Status check(const SamplerParams& p);

class Sampler {
 public:
  Sampler(const SamplerParams& p, int32_t vocab_size);

  // logits: [vocab_size]. history: tokens so far (prompt and generated), for the penalty.
  int32_t sample(const float* logits, const std::vector<int32_t>& history);

  // The probabilities the draw would use (after every filter); exposed for tests.
  const std::vector<std::pair<float, int32_t>>& candidates() const { return cand_; }

 private:
  SamplerParams p_;
  int32_t vocab_;
  std::mt19937_64 rng_;
  // Reused every call: sampling a token allocates nothing once these have grown.
  std::vector<float> work_;
  std::vector<std::pair<float, int32_t>> cand_;  // (probability or logit, token)
  std::vector<float> probs_;
  std::vector<int32_t> penalized_;  // tokens already penalized this call
};

}  // namespace altup

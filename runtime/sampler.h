// Picks the next token from logits. The chain, in llama.cpp's default order:
//   repetition penalty (last N tokens: positive logits / penalty, negative * penalty)
//   -> top-k -> top-p (smallest set whose probability reaches p) -> min-p (drop tokens
//   below min_p x the most likely one's probability) -> temperature -> draw.
// temperature <= 0 is greedy (argmax after the penalty). A seed makes draws repeatable.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

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

// The sampling loop `altup run` and `altup chat` share: sample from the last logits, print
// the text as it comes, feed the choice back, until a length, a stop token or a full context.
#pragma once

#include <vector>

#include "cli/options.h"
#include "runtime/sampler.h"
#include "runtime/session.h"

namespace altup::cli {

// The sampling options `run` and `chat` share, their help lines and ranges in one place.
struct SamplingOptions {
  double temp = 0.8, top_p = 0.95, min_p = 0.05, repeat_penalty = 1.1;
  long long top_k = 40, repeat_last_n = 64, seed = 0;
  bool seed_given = false;
  // Appends --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --seed.
  void add_to(std::vector<Option>& options);
  SamplerParams params() const;  // a random seed unless --seed was given
};

struct Reply {
  long long tokens = 0;  // sampled, the stop token included
  const char* stop = "length";
  bool stopped_at_token = false;  // ended at one of the stop tokens (which was neither printed nor fed)
  double decode_s = 0;            // time spent after the first token
  int32_t unfed = -1;             // the last printed token when it was not fed (length or context reached)
  bool ok = true;                 // false: an error was reported on stderr
};

// `logits` are those of the last token fed. Every sampled token is appended to `history`
// (the repetition penalty's window). Text goes to stdout through `stream`.
Reply generate(Session& s, Sampler& sampler, const float* logits, std::vector<int32_t>& history, long long max_tokens,
               const std::vector<int32_t>& stop_ids, Tokenizer::Stream& stream, const char* command);

}  // namespace altup::cli

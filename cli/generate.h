// The sampling loop `altup run` and `altup chat` share: sample from the last logits, print
// the text as it comes, feed the choice back, until a length, a stop token or a full context.
#pragma once

#include <vector>

#include "runtime/sampler.h"
#include "runtime/session.h"

namespace altup::cli {

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

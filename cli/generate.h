// What `altup run` and `altup chat` share around the engine's one generation loop
// (engine/generate.h): the sampling options and their help, and printing a reply as it comes.
#pragma once

#include <vector>

#include "cli/options.h"
#include "engine/generate.h"
#include "engine/sampler.h"
#include "engine/session.h"

namespace altup::cli {

// The sampling options `run` and `chat` share: defaults, ranges and help lines all come from
// engine/sampler.h's table (kSamplingRanges), the one the C API checks against too.
struct SamplingOptions {
  SamplerParams defaults;
  double temp = defaults.temperature, top_p = defaults.top_p, min_p = defaults.min_p,
         repeat_penalty = defaults.repeat_penalty;
  long long top_k = defaults.top_k, repeat_last_n = defaults.repeat_last_n, seed = 0;
  bool seed_given = false;
  // Appends --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --seed.
  void add_to(std::vector<Option>& options);
  SamplerParams params() const;  // a random seed unless --seed was given
};

// generate(), printing each piece to stdout as it comes (flushed). nullopt-like failure: an
// error was reported on stderr (a decode step, or stdout closed) and the command should exit 1.
struct Printed {
  Generation g;
  bool ok = true;
};
Printed print_reply(Session& s, Sampler& sampler, const float* logits, std::vector<int32_t>& history,
                    const GenerateOptions& options, Tokenizer::Stream& stream, const char* command);

}  // namespace altup::cli
